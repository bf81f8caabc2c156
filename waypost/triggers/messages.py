"""A bridged MQTT or NATS message, its identity, and the goal it becomes (pure).

A broker may deliver a message again: after the bridge crashed between publishing the
goal and acknowledging the message, or after a broker restart. The goal id is derived
from the message's identity, so a message delivered twice is one goal id, and the
orchestrator makes one workflow of one goal id.

- MQTT has no message id that survives a redelivery (a packet id is reused at once), so
  the identity is the topic, the SHA-256 of the payload and, if the bridge names one
  (``id: /json/pointer``), the sender's own id in the payload. Two equal payloads on one
  topic without such an id are one goal.
- NATS JetStream: the publisher's ``Nats-Msg-Id`` header if it sent one (its
  de-duplication id), else the stream and the message's stream sequence.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from waypost.triggers.errors import MappingError, UnreadableMessage
from waypost.triggers.mapping import GoalMapping, pointer

# Goal ids of bridged messages are UUIDs (version 5) in a namespace of their own.
GOAL_ID_NAMESPACE = uuid.UUID("5d0c6a52-8a36-4d1e-9b0e-6f1b2c3d4e5f")


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message as a bridge received it: where it came from, its bytes and its
    identity so far (``key``: the broker's own, or None for MQTT)."""

    bridge: str
    channel: str  # the MQTT topic or NATS subject
    payload: bytes
    received_at: datetime
    key: str | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GoalDraft:
    """The goal a message becomes."""

    goal_id: str
    type: str
    input: dict[str, Any]
    message_id: str


def payload_digest(payload: bytes) -> str:
    """The SHA-256 of a payload, hex."""
    return hashlib.sha256(payload).hexdigest()


def mqtt_key(topic: str, payload: bytes, sender_id: str | None) -> str:
    """The identity of an MQTT message: topic, payload digest and the sender's id."""
    return json.dumps(["mqtt", topic, payload_digest(payload), sender_id])


def nats_key(stream: str, sequence: int, msg_id: str | None) -> str:
    """The identity of a JetStream message: its ``Nats-Msg-Id``, else its stream
    sequence (both stable across redeliveries)."""
    if msg_id:
        return json.dumps(["nats", stream, "id", msg_id])
    return json.dumps(["nats", stream, "seq", sequence])


def goal_id(bridge: str, key: str) -> str:
    """The goal id of the message with identity ``key`` read by ``bridge`` (a UUID)."""
    return str(uuid.uuid5(GOAL_ID_NAMESPACE, json.dumps([bridge, key])))


def parse_body(payload: bytes) -> Any:
    """A payload as JSON; UnreadableMessage if it is not UTF-8 JSON."""
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnreadableMessage(f"the message is not UTF-8 JSON: {exc}") from None


def sender_id(body: Any, id_pointer: str) -> str:
    """The sender's id at ``id_pointer`` (text or a number); MappingError otherwise."""
    value = pointer(body, id_pointer)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise MappingError(
            f"the message's id at {id_pointer} must be a non-empty string or an integer, "
            f"not {json.dumps(value)[:100]}"
        )
    return str(value)


def draft(message: Incoming, mapping: GoalMapping, *, id_pointer: str | None = None) -> GoalDraft:
    """The goal ``message`` becomes under ``mapping``: MappingError when it cannot (not
    JSON, no id where ``id_pointer`` says, or a reference that finds nothing)."""
    body = parse_body(message.payload)
    if message.key is not None:
        key, message_id = message.key, str(message.variables.get("message_id", message.key))
    else:
        sender = sender_id(body, id_pointer) if id_pointer else None
        key = mqtt_key(message.channel, message.payload, sender)
        message_id = sender or payload_digest(message.payload)
    variables = {
        **message.variables,
        "bridge": message.bridge,
        "received_at": message.received_at.isoformat(),
        "message_id": message_id,
    }
    goal_input = mapping.apply(body, variables)
    return GoalDraft(goal_id(message.bridge, key), mapping.goal_type, goal_input, message_id)
