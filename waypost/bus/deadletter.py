"""Dead letters: the original record, byte for byte, plus ``waypost-dlq-*`` headers."""

from __future__ import annotations

import hashlib
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime

from waypost.bus.records import OutgoingRecord, ReceivedRecord
from waypost.topics import Topics

HEADER_PREFIX = "waypost-dlq-"
_MAX_MESSAGE = 2000


@dataclass(frozen=True, slots=True)
class Failure:
    """Why and how often a record could not be processed."""

    error: BaseException
    attempts: int
    first_failure: datetime
    last_failure: datetime


def stack_digest(error: BaseException) -> str:
    """A short digest of where an error was raised, to group identical failures."""
    frames = traceback.extract_tb(error.__traceback__)
    where = "|".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.name}:{f.lineno}" for f in frames)
    return hashlib.sha256(f"{type(error).__name__}|{where}".encode()).hexdigest()[:16]


def dead_letter(record: ReceivedRecord, failure: Failure, *, group: str) -> OutgoingRecord:
    """The record to publish on ``<source topic>.dlq`` for a record that failed."""
    message = str(failure.error) or type(failure.error).__name__
    extra = {
        "source-topic": record.topic,
        "source-partition": str(record.partition),
        "source-offset": str(record.offset),
        "source-timestamp": str(record.timestamp_ms) if record.timestamp_ms is not None else "",
        "consumer-group": group,
        "error-class": type(failure.error).__name__,
        "error-message": message[:_MAX_MESSAGE],
        "stack-digest": stack_digest(failure.error),
        "attempts": str(failure.attempts),
        "first-failure": _iso(failure.first_failure),
        "last-failure": _iso(failure.last_failure),
    }
    headers = record.headers + tuple((HEADER_PREFIX + k, v.encode()) for k, v in extra.items())
    return OutgoingRecord(Topics.dlq(record.topic), record.key, record.value, headers)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
