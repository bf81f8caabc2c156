"""Dead-letter records in and out: what the index stores of a record read from a
``*.dlq`` topic, and the record a replay sends.

A replayed record is the dead letter's key, value (or the edited value) and headers,
without the ``waypost-dlq-*`` headers of its failure, plus:

- ``waypost-replay-of``: the id of the dead letter it replays;
- ``waypost-replay-count``: how many replays led to this record (1 for the first);
- ``waypost-replay-request``: the replay request that sent it.

A record that fails again is dead-lettered with these headers, so the next dead letter
knows its replay count and the loop guard can stop a message that keeps failing.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

from waypost.bus.dead_letters import HEADER_PREFIX, REPLAY_OF_HEADER
from waypost.bus.records import Headers, OutgoingRecord, ReceivedRecord, headers_to_json
from waypost.events.modes import claims_cloudevent
from waypost.topics import DLQ_SUFFIX, Topics

REPLAY_OF = REPLAY_OF_HEADER
REPLAY_COUNT = "waypost-replay-count"
REPLAY_REQUEST = "waypost-replay-request"
_REPLAY_HEADERS = (REPLAY_OF, REPLAY_COUNT, REPLAY_REQUEST)


def fingerprint(record: ReceivedRecord) -> str:
    """SHA-256 of key, value and headers: the same dead letter read twice is one row."""
    digest = hashlib.sha256()
    for part in (record.key, record.value):
        digest.update(b"-" if part is None else b"+%d:" % len(part) + part)
    digest.update(orjson.dumps(headers_to_json(record.headers)))
    return digest.hexdigest()


def index_row(record: ReceivedRecord, topics: Topics) -> dict[str, Any]:
    """The ``dead_letters`` row of a record read from a dead-letter topic."""
    dlq = _dlq_headers(record.headers)
    attrs = {name: value.decode(errors="replace") for name, value in record.headers}
    source = dlq.get("source-topic") or record.topic.removesuffix(DLQ_SUFFIX)
    payload = _json(record.value)
    last_failure = _time(dlq.get("last-failure"))
    # A structured-mode event carries its attributes in the value, not in ce_ headers.
    event = payload if claims_cloudevent(record.headers) and isinstance(payload, dict) else {}
    return {
        "fingerprint": fingerprint(record),
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "source_topic": source,
        "source_partition": _int(dlq.get("source-partition")),
        "source_offset": _int(dlq.get("source-offset")),
        "consumer_group": dlq.get("consumer-group") or None,
        "reason": dlq.get("reason") or None,
        "error_class": dlq.get("error-class") or None,
        "error_message": dlq.get("error-message") or None,
        "stack_digest": dlq.get("stack-digest") or None,
        "attempts": _int(dlq.get("attempts")),
        "first_failure_at": _time(dlq.get("first-failure")),
        "last_failure_at": last_failure,
        "dead_lettered_at": _timestamp(record.timestamp_ms) or last_failure or datetime.now(UTC),
        "event_type": attrs.get("ce_type") or _field(event, "type"),
        "event_id": attrs.get("ce_id") or _field(event, "id"),
        "workflow_id": attrs.get("waypost-workflow-id") or _field(payload, "workflow_id"),
        "task_id": attrs.get("waypost-task-id") or _field(payload, "task_id"),
        "capability": capability_of(source, topics) or _field(payload, "capability"),
        "key": record.key,
        "value": record.value,
        "headers": headers_to_json(record.headers),
        "payload": payload,
        "replay_count": _int(attrs.get(REPLAY_COUNT)) or 0,
        "replay_of": attrs.get(REPLAY_OF),
    }


def capability_of(topic: str, topics: Topics) -> str | None:
    """The capability whose task topic this is, or None."""
    prefix = topics.tasks("")
    return topic.removeprefix(prefix) or None if topic.startswith(prefix) else None


def replay_record(
    *,
    dead_letter_id: int,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
    replay_count: int,
    request_id: str,
) -> OutgoingRecord:
    """The record a replay sends: the original headers without those of the failure or
    of an earlier replay, and the replay headers."""
    kept = tuple(
        (name, v)
        for name, v in headers
        if not name.startswith(HEADER_PREFIX) and name not in _REPLAY_HEADERS
    )
    added = (
        (REPLAY_OF, str(dead_letter_id).encode()),
        (REPLAY_COUNT, str(replay_count + 1).encode()),
        (REPLAY_REQUEST, request_id.encode()),
    )
    return OutgoingRecord(topic, key, value, kept + added)


def _dlq_headers(headers: Headers) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in headers:
        if name.startswith(HEADER_PREFIX):
            found[name.removeprefix(HEADER_PREFIX)] = value.decode(errors="replace")
    return found


def _json(value: bytes | None) -> Any:
    if not value or b"\\u0000" in value:  # PostgreSQL's jsonb cannot hold NUL
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return None


def _field(payload: Any, name: str) -> str | None:
    found = payload.get(name) if isinstance(payload, dict) else None
    return found if isinstance(found, str) else None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _timestamp(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms and ms > 0 else None
