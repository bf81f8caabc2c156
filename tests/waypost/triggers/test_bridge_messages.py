"""Message identity and the goal a message becomes (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from waypost.triggers.errors import MappingError, UnreadableMessage
from waypost.triggers.mapping import GoalMapping
from waypost.triggers.messages import Incoming, draft, goal_id, mqtt_key, nats_key

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
MAPPING = GoalMapping(
    "support.ticket", {"text": "${/text}", "id": "${message_id}", "on": "${topic}"}
)


def mqtt(payload: bytes, topic: str = "a/b") -> Incoming:
    return Incoming("alarms", topic, payload, AT, variables={"topic": topic})


def test_the_same_mqtt_message_delivered_again_is_the_same_goal() -> None:
    payload = json.dumps({"text": "hi"}).encode()
    first = draft(mqtt(payload), MAPPING)
    again = draft(
        Incoming("alarms", "a/b", payload, datetime.now(UTC), variables={"topic": "a/b"}), MAPPING
    )
    assert first.goal_id == again.goal_id
    assert first.input == {"text": "hi", "id": first.message_id, "on": "a/b"}


def test_mqtt_goal_ids_differ_by_payload_topic_bridge_and_sender_id() -> None:
    base = goal_id("alarms", mqtt_key("a/b", b"{}", None))
    assert base != goal_id("alarms", mqtt_key("a/c", b"{}", None))
    assert base != goal_id("alarms", mqtt_key("a/b", b"{ }", None))
    assert base != goal_id("other", mqtt_key("a/b", b"{}", None))
    assert base != goal_id("alarms", mqtt_key("a/b", b"{}", "e-1"))


def test_a_sender_id_names_the_message() -> None:
    payload = json.dumps({"text": "hi", "event": 42}).encode()
    goal = draft(mqtt(payload), MAPPING, id_pointer="/event")
    assert goal.message_id == "42"
    assert goal.goal_id == goal_id("alarms", mqtt_key("a/b", payload, "42"))
    with pytest.raises(MappingError, match="nothing at /missing"):
        draft(mqtt(payload), MAPPING, id_pointer="/missing")
    with pytest.raises(MappingError, match="non-empty string or an integer"):
        draft(mqtt(json.dumps({"text": "x", "event": [1]}).encode()), MAPPING, id_pointer="/event")


def test_nats_identity_is_the_msg_id_else_the_stream_sequence() -> None:
    assert nats_key("S", 7, None) == nats_key("S", 7, None)
    assert nats_key("S", 7, None) != nats_key("S", 8, None)
    assert nats_key("S", 7, "m-1") == nats_key("S", 9, "m-1")  # the publisher's id wins
    assert nats_key("S", 7, None) != nats_key("T", 7, None)
    message = Incoming(
        "orders",
        "o.c",
        b'{"text": "x"}',
        AT,
        key=nats_key("S", 7, None),
        variables={"message_id": "S:7", "topic": "o.c"},
    )
    goal = draft(message, MAPPING)
    assert goal.goal_id == goal_id("orders", nats_key("S", 7, None))
    assert goal.input["id"] == "S:7"


def test_unreadable_and_unmappable_messages_say_why() -> None:
    with pytest.raises(UnreadableMessage, match="not UTF-8 JSON"):
        draft(mqtt(b"\xff"), MAPPING)
    with pytest.raises(MappingError, match="nothing at /text"):
        draft(mqtt(b"{}"), MAPPING)
