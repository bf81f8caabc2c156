"""Dead letters: the original record byte for byte, plus why and where it failed."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from functools import partial

from waypost.bus.dead_letters import (
    Exhaustion,
    Failure,
    dead_letter,
    exhausted,
    message_digest,
    stack_digest,
)
from waypost.bus.records import OutgoingRecord, ReceivedRecord
from waypost.errors import InvalidEvent, UndecodableEvent, UnexpectedEvent

RECORD = ReceivedRecord(
    topic="ns.results",
    partition=3,
    offset=41,
    key=b"\x00wf-1\xff",
    value=b"\xde\xad not even json",
    headers=(("ce_id", b"e-1"), ("binary", b"\x00\xff"), ("ce_id", b"dup")),
    timestamp_ms=1_700_000_000_123,
)
FIRST = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
LAST = FIRST + timedelta(seconds=2)


def _raised(error: Exception) -> Exception:
    try:
        raise error
    except Exception as caught:
        return caught


def _dlq_headers(letter_headers: tuple[tuple[str, bytes], ...]) -> dict[str, str]:
    prefix = "waypost-dlq-"
    return {n.removeprefix(prefix): v.decode() for n, v in letter_headers if n.startswith(prefix)}


def test_a_dead_letter_keeps_the_original_record_byte_for_byte() -> None:
    letter = dead_letter(RECORD, Failure(_raised(ValueError("bad")), 1, FIRST, LAST), group="g")

    assert letter.topic == "ns.results.dlq"
    assert letter.key == RECORD.key
    assert letter.value == RECORD.value
    assert letter.headers[: len(RECORD.headers)] == RECORD.headers


def test_a_dead_letter_says_where_the_record_came_from_and_why_it_failed() -> None:
    error = _raised(ValueError("no such customer"))

    letter = dead_letter(RECORD, Failure(error, 3, FIRST, LAST), group="ns.orchestrator")

    assert _dlq_headers(letter.headers) == {
        "reason": "handler-error",
        "source-topic": "ns.results",
        "source-partition": "3",
        "source-offset": "41",
        "source-timestamp": "1700000000123",
        "consumer-group": "ns.orchestrator",
        "error-class": "ValueError",
        "error-message": "no such customer",
        "stack-digest": stack_digest(error),
        "attempts": "3",
        "first-failure": "2024-01-02T03:04:05.678Z",
        "last-failure": "2024-01-02T03:04:07.678Z",
    }


def test_the_reason_says_whether_the_record_was_unreadable_invalid_or_failed_its_handler() -> None:
    reasons = {
        error_type.__name__: _dlq_headers(
            dead_letter(
                RECORD, Failure(_raised(error_type("x")), 1, FIRST, LAST), group="g"
            ).headers
        )["reason"]
        for error_type in (UndecodableEvent, InvalidEvent, UnexpectedEvent, RuntimeError)
    }

    assert reasons == {
        "UndecodableEvent": "undecodable",
        "InvalidEvent": "invalid",
        "UnexpectedEvent": "invalid",
        "RuntimeError": "handler-error",
    }


DISPATCH = OutgoingRecord(
    "ns.tasks.echo",
    b"task-1",
    b'{"input":{"text":"bad"}}',
    (("ce_id", b"d-1"), ("ce_type", b"waypost.task.dispatched")),
)


def test_an_exhausted_task_is_dead_lettered_as_its_dispatch_with_the_same_headers() -> None:
    exhaustion = Exhaustion("NonRetryableError", "bad input", 3, FIRST, LAST)

    letter = exhausted(DISPATCH, exhaustion, group="ns.agents.echo")

    assert (letter.topic, letter.key, letter.value) == (
        "ns.tasks.echo.dlq",
        b"task-1",
        DISPATCH.value,
    )
    assert letter.headers[: len(DISPATCH.headers)] == DISPATCH.headers
    assert _dlq_headers(letter.headers) == {
        "reason": "exhausted",
        "source-topic": "ns.tasks.echo",
        "source-partition": "",
        "source-offset": "",
        "source-timestamp": "",
        "consumer-group": "ns.agents.echo",
        "error-class": "NonRetryableError",
        "error-message": "bad input",
        "stack-digest": message_digest("NonRetryableError", "bad input"),
        "attempts": "3",
        "first-failure": "2024-01-02T03:04:05.678Z",
        "last-failure": "2024-01-02T03:04:07.678Z",
    }


def test_the_digest_of_an_exhausted_task_is_the_sha256_of_its_error_type_and_message() -> None:
    expected = hashlib.sha256(b"ValueError|no such customer").hexdigest()[:16]

    assert message_digest("ValueError", "no such customer") == expected
    assert message_digest("ValueError", "other") != expected


def test_failure_times_are_written_in_utc() -> None:
    east = FIRST.astimezone(timezone(timedelta(hours=5)))

    letter = dead_letter(RECORD, Failure(_raised(ValueError()), 1, east, east), group="g")

    assert _dlq_headers(letter.headers)["first-failure"] == "2024-01-02T03:04:05.678Z"


def test_a_record_without_a_timestamp_has_an_empty_source_timestamp() -> None:
    record = ReceivedRecord("t", 0, 0, None, None)

    letter = dead_letter(record, Failure(_raised(ValueError("x")), 1, FIRST, LAST), group="g")

    assert _dlq_headers(letter.headers)["source-timestamp"] == ""
    assert (letter.key, letter.value) == (None, None)


def test_an_error_without_a_message_is_named_by_its_class() -> None:
    letter = dead_letter(RECORD, Failure(_raised(KeyError()), 1, FIRST, LAST), group="g")

    assert _dlq_headers(letter.headers)["error-message"] == "KeyError"


def test_a_long_error_message_is_cut() -> None:
    error = _raised(ValueError("x" * 5000))

    letter = dead_letter(RECORD, Failure(error, 1, FIRST, LAST), group="g")

    assert _dlq_headers(letter.headers)["error-message"] == "x" * 2000


def _catch(action: Callable[[], object]) -> Exception:
    try:
        action()
    except Exception as caught:
        return caught
    raise AssertionError("expected an error")


def _fail_here(message: str = "x") -> None:
    raise RuntimeError(message)


def _fail_there(message: str = "x") -> None:
    raise RuntimeError(message)


def test_the_stack_digest_groups_failures_from_the_same_place() -> None:
    first = _catch(partial(_fail_here, "customer 1"))
    second = _catch(partial(_fail_here, "customer 2"))

    assert stack_digest(first) == stack_digest(second)
    assert re.fullmatch(r"[0-9a-f]{16}", stack_digest(first))


def test_the_stack_digest_tells_places_and_classes_apart() -> None:
    here = _catch(_fail_here)

    assert stack_digest(here) != stack_digest(_catch(_fail_there))
    assert stack_digest(_raised(ValueError("x"))) != stack_digest(_raised(KeyError("x")))


def test_an_error_that_was_never_raised_still_has_a_digest() -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", stack_digest(ValueError("never raised")))
