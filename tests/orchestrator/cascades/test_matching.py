"""Which goals an event starts: filters, input mappings, the depth limit, goal ids (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.cascades.errors import CascadeDepthExceeded, CascadeRefused
from orchestrator.cascades.events import DEPTH_HEADER, TriggerEvent, read_event
from orchestrator.cascades.matching import Triggers, depth_of, filter_holds, goal_id, same_json
from orchestrator.playbooks.loader import load_text
from orchestrator.playbooks.model import Playbook
from waypost.events import DecisionQualityDrifted, Event
from waypost.events.codec import default_codec
from waypost.topics import Topics

EVENTS = "waypost.workflow.events"


def _playbook(goal_type: str, triggers: str, input_schema: str = "") -> Playbook:
    return load_text(
        f"type: {goal_type}\n{input_schema}triggers:\n{triggers}\n"
        "steps:\n  - {name: echo, capability: echo}\n"
    )


SECOND = _playbook(
    "a.second",
    "  - topic: workflow.events\n"
    "    type: waypost.workflow.completed\n"
    "    filter: {/type: a.first}\n"
    '    input: {text: "${/output/text}", after: "${/workflow_id}", by: "${source}"}',
    "input_schema: {type: object, required: [text], additionalProperties: false,"
    " properties: {text: {type: string}, after: {type: string}, by: {type: string}}}\n",
)


def _event(
    data: Any, *, depth: bytes | None = None, type_: str = "waypost.workflow.completed"
) -> TriggerEvent:
    return TriggerEvent("ev-1", type_, "waypost/orchestrator", data, depth)


def _completed(goal_type: str = "a.first", text: str = "hi") -> dict[str, Any]:
    return {"workflow_id": "wf-1", "type": goal_type, "output": {"text": text}}


def test_a_matching_event_starts_one_goal_with_the_mapped_input_and_its_trigger() -> None:
    triggers = Triggers([SECOND], Topics("waypost"))

    (start,) = triggers.starts(EVENTS, _event(_completed()), max_depth=8)

    assert triggers.topics == [EVENTS]
    assert start.goal_type == "a.second"
    assert start.input == {
        "text": "hi",
        "after": "wf-1",
        "by": "waypost/orchestrator",
        "_trigger": {
            "event_id": "ev-1",
            "event_type": "waypost.workflow.completed",
            "source": "waypost/orchestrator",
            "topic": "workflow.events",
            "workflow_id": "wf-1",
            "depth": 1,
        },
    }
    assert start.goal_id == goal_id("a.second", _event(_completed()))


def test_events_of_another_type_topic_or_data_start_nothing() -> None:
    triggers = Triggers([SECOND], Topics("waypost"))

    assert triggers.starts(EVENTS, _event(_completed("other")), max_depth=8) == []
    assert triggers.starts(EVENTS, _event({"no": "type"}), max_depth=8) == []
    assert (
        triggers.starts(EVENTS, _event(_completed(), type_="waypost.workflow.failed"), max_depth=8)
        == []
    )
    assert triggers.starts("waypost.goals", _event(_completed()), max_depth=8) == []
    assert triggers.starts(EVENTS, _event(None), max_depth=8) == []


def test_the_depth_is_one_more_than_the_events_and_the_limit_refuses_with_the_depth() -> None:
    triggers = Triggers([SECOND], Topics("waypost"))

    (start,) = triggers.starts(EVENTS, _event(_completed(), depth=b"7"), max_depth=8)
    assert depth_of(start.input) == 8
    with pytest.raises(
        CascadeDepthExceeded, match=r"^cascade depth 8 reached: event ev-1 .*a\.second at depth 9"
    ):
        triggers.starts(EVENTS, _event(_completed(), depth=b"8"), max_depth=8)
    # An event no trigger matches is not refused, whatever its depth.
    assert triggers.starts(EVENTS, _event(_completed("other"), depth=b"99"), max_depth=8) == []


def test_an_unreadable_depth_refuses_a_matching_event() -> None:
    triggers = Triggers([SECOND], Topics("waypost"))

    with pytest.raises(CascadeRefused, match="waypost-cascade-depth header 'many'"):
        triggers.starts(EVENTS, _event(_completed(), depth=b"many"), max_depth=8)


def test_a_mapping_or_input_schema_that_refuses_the_event_names_the_trigger() -> None:
    triggers = Triggers([SECOND], Topics("waypost"))

    with pytest.raises(
        CascadeRefused, match=r"matches playbook a\.second trigger 1 .*nothing at /output"
    ):
        triggers.starts(EVENTS, _event({"type": "a.first", "workflow_id": "w"}), max_depth=8)
    with pytest.raises(
        CascadeRefused, match="breaks the playbook's input_schema: text: 5 is not of type"
    ):
        triggers.starts(EVENTS, _event({**_completed(), "output": {"text": 5}}), max_depth=8)


def test_data_that_is_not_json_refuses_an_event_of_a_triggering_type() -> None:
    triggers = Triggers([SECOND], Topics("waypost"))
    event = TriggerEvent("e", "waypost.workflow.completed", "s", None, None, "body is not JSON")

    with pytest.raises(
        CascadeRefused, match=r"matches playbook a\.second trigger 1 .*, but body is not JSON"
    ):
        triggers.starts(EVENTS, event, max_depth=8)


def test_one_goal_id_per_playbook_and_event() -> None:
    event = _event(_completed())
    other_source = TriggerEvent("ev-1", event.type, "elsewhere", event.data)

    assert goal_id("a.second", event) == goal_id("a.second", _event({}))
    assert goal_id("a.second", event) != goal_id("a.third", event)
    assert goal_id("a.second", event) != goal_id("a.second", other_source)
    assert goal_id("a.second", event).startswith("cascade-")


def test_two_triggers_of_one_playbook_matching_one_event_start_one_goal() -> None:
    both = _playbook(
        "a.both",
        "  - {topic: workflow.events, type: waypost.workflow.completed, filter: {/type: a.first}}\n"
        "  - {topic: workflow.events, type: waypost.workflow.completed}",
    )
    triggers = Triggers([both, SECOND], Topics("waypost"))

    starts = triggers.starts(EVENTS, _event(_completed()), max_depth=8)

    assert sorted(s.goal_type for s in starts) == ["a.both", "a.second"]


def test_filters_compare_as_json() -> None:
    assert filter_holds({"/a/b": 1, "/c": "x"}, {"a": {"b": 1.0}, "c": "x"})
    assert not filter_holds({"/a": True}, {"a": 1})
    assert not filter_holds({"/a": 1}, {"a": True})
    assert not filter_holds({"/missing": None}, {"a": 1})
    assert filter_holds({"/a": None}, {"a": None})
    assert filter_holds({"": {"k": [1, True]}}, {"k": [1, True]})
    assert not same_json({"k": [1, True]}, {"k": [1, 1]})
    assert not same_json([1], {"0": 1})
    assert filter_holds({}, "anything")


def test_depth_of_a_workflow_without_a_trigger_is_zero() -> None:
    assert depth_of({"text": "x"}) == 0
    assert depth_of({"_trigger": {"depth": 3}}) == 3
    assert depth_of({"_trigger": {"depth": "3"}}) == 0
    assert depth_of({"_trigger": "forged"}) == 0


def test_binary_and_structured_records_read_alike() -> None:
    data = _completed()
    binary = read_event(
        json.dumps(data).encode(),
        (
            ("ce_specversion", b"1.0"),
            ("ce_id", b"e1"),
            ("ce_type", b"t.x"),
            ("ce_source", b"s"),
            (DEPTH_HEADER, b"3"),
        ),
    )
    structured = read_event(
        json.dumps(
            {"specversion": "1.0", "id": "e1", "type": "t.x", "source": "s", "data": data}
        ).encode(),
        (("content-type", b"application/cloudevents+json; charset=utf-8"), (DEPTH_HEADER, b"3")),
    )

    assert binary == structured == TriggerEvent("e1", "t.x", "s", data, b"3")
    assert binary is not None
    assert binary.depth == 3


def test_records_that_are_not_cloudevents_are_none_and_bad_data_is_said() -> None:
    assert read_event(b"{}", (("ce_id", b"e"),)) is None
    assert read_event(b"not json", (("content-type", b"application/cloudevents+json"),)) is None
    assert read_event(b'{"id": "e"}', (("content-type", b"application/cloudevents+json"),)) is None
    headers = (("ce_specversion", b"1.0"), ("ce_id", b"e"), ("ce_type", b"t"), ("ce_source", b"s"))
    unreadable = read_event(b"\xff{", headers)
    assert unreadable is not None
    assert unreadable.data_error is not None
    assert "is not JSON" in unreadable.data_error
    assert read_event(None, headers) == TriggerEvent("e", "t", "s", None)


def test_a_decision_quality_drift_starts_a_workflow_for_the_capability() -> None:
    # The event exactly as the orchestrator's quality watch publishes it.
    drifted = DecisionQualityDrifted(
        capability="billing.credit",
        version="3",
        verdict="rejected",
        rate=0.4,
        threshold=0.25,
        count=8,
        decided=20,
        window_start=datetime(2026, 12, 3, tzinfo=UTC),
        window_end=datetime(2026, 12, 4, tzinfo=UTC),
    )
    encoded = default_codec().encode(Event(drifted, "waypost/orchestrator"))
    event = read_event(encoded.value, encoded.headers)
    assert event is not None
    watch = _playbook(
        "ops.quality_alert",
        "  - topic: workflow.events\n"
        "    type: waypost.decision_quality.drifted\n"
        "    filter: {/verdict: rejected}\n"
        '    input: {capability: "${/capability}", version: "${/version}", rate: "${/rate}"}',
    )

    (start,) = Triggers([watch], Topics("waypost")).starts(EVENTS, event, max_depth=8)

    assert start.goal_type == "ops.quality_alert"
    assert {k: start.input[k] for k in ("capability", "version", "rate")} == {
        "capability": "billing.credit",
        "version": "3",
        "rate": 0.4,
    }
    assert start.input["_trigger"]["event_type"] == "waypost.decision_quality.drifted"
