"""Dead letters: the original record, byte for byte, plus ``waypost-dlq-*`` headers.

Two writers publish dead letters to ``<source topic>.dlq``, with one header builder:

- every consumer loop, for a record it could not process (:func:`dead_letter`);
- the orchestrator, for a task whose attempts ran out or whose failure retrying cannot
  fix (:func:`exhausted`): the record is the task's last dispatch, rebuilt exactly as it
  was published (same key, headers and body), so replaying it runs that attempt again.

Headers (UTF-8 text; an empty value where the writer cannot know it):

- ``waypost-dlq-reason``: why it was dead-lettered. ``undecodable`` (its headers, bytes
  or JSON cannot be read), ``invalid`` (it breaks its event type's schema, or is not an
  event type its consumer handles), ``handler-error`` (the handler failed on it every
  local attempt), ``exhausted`` (a task's attempts ran out, or it failed in a way retrying
  cannot fix: written by the orchestrator).
- ``waypost-dlq-source-topic``, ``-source-partition``, ``-source-offset``,
  ``-source-timestamp`` (ms since the epoch): where it was consumed. The orchestrator
  dead-letters from its own state, not a consumed record: its partition, offset and
  timestamp are empty.
- ``waypost-dlq-consumer-group``: the group that failed on it (for ``exhausted``, the
  agent group of the task's capability).
- ``waypost-dlq-error-class``, ``-error-message`` (at most 2,000 characters).
- ``waypost-dlq-stack-digest``: 16 hex characters grouping identical failures: the first
  16 of the SHA-256 of ``<class>|<file:function:line|...>`` of the traceback for the
  consumer loop; of ``<error type>|<error message>`` for ``exhausted`` (the orchestrator
  only has the agent's error type and message, not its traceback).
- ``waypost-dlq-attempts``: how many times it was tried.
- ``waypost-dlq-first-failure``, ``-last-failure``: when the first and last try failed
  (ISO 8601, UTC, milliseconds).

A record replayed from the dead-letter workbench carries ``waypost-replay-of``; an agent
runs it even when its deadline has passed (its workflow waits for it).
"""

from __future__ import annotations

import hashlib
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime

from waypost.bus.records import Headers, OutgoingRecord, ReceivedRecord
from waypost.errors import EventError, UndecodableEvent
from waypost.topics import Topics

HEADER_PREFIX = "waypost-dlq-"
REPLAY_OF_HEADER = "waypost-replay-of"
UNDECODABLE = "undecodable"
INVALID = "invalid"
HANDLER_ERROR = "handler-error"
EXHAUSTED = "exhausted"
_MAX_MESSAGE = 2000


@dataclass(frozen=True, slots=True)
class Failure:
    """Why and how often a consumed record could not be processed."""

    error: BaseException
    attempts: int
    first_failure: datetime
    last_failure: datetime


@dataclass(frozen=True, slots=True)
class Exhaustion:
    """Why a task was given up on: its last error, and its failed attempts."""

    error_type: str
    error_message: str
    attempts: int
    first_failure: datetime
    last_failure: datetime


@dataclass(frozen=True, slots=True)
class Cause:
    """Everything the ``waypost-dlq-*`` headers say (see the module docstring)."""

    reason: str
    source_topic: str
    consumer_group: str
    error_class: str
    error_message: str
    stack_digest: str
    attempts: int
    first_failure: datetime
    last_failure: datetime
    source_partition: str = ""
    source_offset: str = ""
    source_timestamp: str = ""


def stack_digest(error: BaseException) -> str:
    """A short digest of where an error was raised, to group identical failures."""
    frames = traceback.extract_tb(error.__traceback__)
    where = "|".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.name}:{f.lineno}" for f in frames)
    return _digest(f"{type(error).__name__}|{where}")


def message_digest(error_type: str, message: str) -> str:
    """A short digest of an error known only by its type and message."""
    return _digest(f"{error_type}|{message}")


def reason_of(error: BaseException) -> str:
    """The ``waypost-dlq-reason`` of a record a consumer failed on with ``error``."""
    if isinstance(error, UndecodableEvent):
        return UNDECODABLE
    if isinstance(error, EventError):
        return INVALID
    return HANDLER_ERROR


def dlq_headers(cause: Cause) -> Headers:
    """The ``waypost-dlq-*`` headers of a dead letter."""
    fields = {
        "reason": cause.reason,
        "source-topic": cause.source_topic,
        "source-partition": cause.source_partition,
        "source-offset": cause.source_offset,
        "source-timestamp": cause.source_timestamp,
        "consumer-group": cause.consumer_group,
        "error-class": cause.error_class,
        "error-message": (cause.error_message or cause.error_class)[:_MAX_MESSAGE],
        "stack-digest": cause.stack_digest,
        "attempts": str(cause.attempts),
        "first-failure": _iso(cause.first_failure),
        "last-failure": _iso(cause.last_failure),
    }
    return tuple((HEADER_PREFIX + name, value.encode()) for name, value in fields.items())


def dead_letter(record: ReceivedRecord, failure: Failure, *, group: str) -> OutgoingRecord:
    """The record to publish on ``<source topic>.dlq`` for a record that failed."""
    error = failure.error
    cause = Cause(
        reason=reason_of(error),
        source_topic=record.topic,
        consumer_group=group,
        error_class=type(error).__name__,
        error_message=str(error),
        stack_digest=stack_digest(error),
        attempts=failure.attempts,
        first_failure=failure.first_failure,
        last_failure=failure.last_failure,
        source_partition=str(record.partition),
        source_offset=str(record.offset),
        source_timestamp=str(record.timestamp_ms) if record.timestamp_ms is not None else "",
    )
    return _letter(record.topic, record.key, record.value, record.headers, cause)


def exhausted(record: OutgoingRecord, exhaustion: Exhaustion, *, group: str) -> OutgoingRecord:
    """The dead letter of a task given up on: ``record`` is its last dispatch, exactly as
    it was published; ``group`` the agent group of its capability."""
    cause = Cause(
        reason=EXHAUSTED,
        source_topic=record.topic,
        consumer_group=group,
        error_class=exhaustion.error_type,
        error_message=exhaustion.error_message,
        stack_digest=message_digest(exhaustion.error_type, exhaustion.error_message),
        attempts=exhaustion.attempts,
        first_failure=exhaustion.first_failure,
        last_failure=exhaustion.last_failure,
    )
    return _letter(record.topic, record.key, record.value, record.headers, cause)


def _letter(
    topic: str, key: bytes | None, value: bytes | None, headers: Headers, cause: Cause
) -> OutgoingRecord:
    return OutgoingRecord(Topics.dlq(topic), key, value, headers + dlq_headers(cause))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
