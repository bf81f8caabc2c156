"""Deciding one dead letter's replay, before anything is sent: the record it would send
(edited when the order says so), or why it sends nothing.

In order: a dead letter that is no longer pending is a no-op (each is sent at most
once); the loop guard may refuse it; an edit needs a JSON value; and the record must
pass its event type's JSON Schema when it is a Waypost event, since it would otherwise
be dead-lettered again at once.
"""

from __future__ import annotations

import orjson

from orchestrator.dead_letters import guard
from orchestrator.dead_letters.orders import Prepared, ReplayOrder
from orchestrator.dead_letters.records import replay_record
from orchestrator.store.dead_letters import DeadLetter
from waypost.bus.records import OutgoingRecord
from waypost.errors import EventError
from waypost.events import Codec


def prepare(letter: DeadLetter, order: ReplayOrder, *, codec: Codec, max_replays: int) -> Prepared:
    """The record a replay of ``letter`` sends, or why it sends nothing."""
    if letter.status != "pending":
        by = f" by {letter.status_by}" if letter.status_by else ""
        request = f" (request {letter.replay_request_id})" if letter.replay_request_id else ""
        return Prepared(letter, "noop", f"already {letter.status}{by}{request}", None)
    refused = guard.refusal(letter.replay_count, max_replays=max_replays, force=order.force)
    if refused is not None:
        return Prepared(letter, "refused", refused, None)
    value, payload = letter.value, letter.payload
    if order.edit is not None:
        if letter.payload is None and letter.value:
            return Prepared(letter, "invalid", "the value is not JSON: it cannot be edited", None)
        payload = order.edit.apply(letter.payload)
        value = orjson.dumps(payload)
    record = replay_record(
        dead_letter_id=letter.id,
        topic=order.target_topic or letter.source_topic,
        key=letter.key,
        value=value,
        headers=letter.headers,
        replay_count=letter.replay_count,
        request_id=order.request_id,
    )
    problem = _problem(record, codec)
    if problem is not None:
        return Prepared(letter, "invalid", problem, None, payload)
    return Prepared(letter, "sent", None, record, payload)


def _problem(record: OutgoingRecord, codec: Codec) -> str | None:
    """Why the record would be dead-lettered again at once (None: it passes)."""
    if not any(name == "ce_type" for name, _ in record.headers):
        return None  # not a Waypost event: no schema to check it against
    try:
        codec.decode(record.value, record.headers)
    except EventError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
