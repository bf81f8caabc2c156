"""Deciding one dead letter's replay, before anything is sent: the record it would send
(edited when the order says so), or why it sends nothing.

In order: a dead letter that is no longer pending is a no-op (each is sent at most
once); the loop guard may refuse it; a payload edit needs a JSON value; a header edit
changes the headers sent; and the record must decode (either CloudEvents mode) and pass
its event type's JSON Schema when it says it is a CloudEvent, since it would otherwise be
dead-lettered again at once.
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
from waypost.events.modes import claims_cloudevent


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
    headers = letter.headers
    if order.header_edit is not None:
        headers = order.header_edit.apply(headers)
    record = replay_record(
        dead_letter_id=letter.id,
        topic=order.target_topic or letter.source_topic,
        key=letter.key,
        value=value,
        headers=headers,
        replay_count=letter.replay_count,
        request_id=order.request_id,
    )
    problem = _problem(record, codec)
    if problem is not None:
        return Prepared(letter, "invalid", problem, None, payload)
    return Prepared(letter, "sent", None, record, payload)


def _problem(record: OutgoingRecord, codec: Codec) -> str | None:
    """Why the record would be dead-lettered again at once (None: it passes)."""
    if not claims_cloudevent(record.headers):
        return None  # not an event: no schema to check it against
    try:
        codec.decode(record.value, record.headers)
    except EventError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
