"""Cancelled attempts (pure): what the registry remembers and for how long, which records
the listener takes, and what the worker does with a cancelled attempt."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from waypost import AgentContext, agent
from waypost.bus.base import TopicSpec
from waypost.bus.loop import Delivery
from waypost.bus.memory import MemoryBus
from waypost.bus.records import ReceivedRecord
from waypost.events import (
    Event,
    Payload,
    TaskAttemptRef,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    WorkflowCancelled,
    WorkflowStarted,
    default_codec,
)
from waypost.runtime.cancellations import CancellationListener, Cancellations
from waypost.runtime.worker import AgentWorker
from waypost.topics import Topics

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TOPICS = Topics("ns")


def _at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_a_cancelled_attempt_is_known_until_it_is_forgotten() -> None:
    clock = [NOW]
    cancellations = Cancellations(remember_s=60, clock=lambda: clock[0])

    assert cancellations.cancel([("t1", 1), ("t2", 3)], at=NOW) == 2

    assert cancellations.is_cancelled("t1", 1)
    assert cancellations.is_cancelled("t2", 3)
    assert not cancellations.is_cancelled("t1", 2)  # another attempt of the same task
    clock[0] = _at(61)
    assert not cancellations.is_cancelled("t1", 1)
    cancellations.cancel([("t3", 1)], at=clock[0])
    assert len(cancellations) == 1  # the expired ones are dropped, not only hidden


def test_a_cancellation_older_than_the_memory_is_not_recorded() -> None:
    cancellations = Cancellations(remember_s=60, clock=lambda: NOW)

    assert cancellations.cancel([("t1", 1)], at=_at(-61)) == 0

    assert not cancellations.is_cancelled("t1", 1)
    assert len(cancellations) == 0


def test_a_watched_attempt_has_its_event_set_when_cancelled_and_only_while_watched() -> None:
    cancellations = Cancellations(clock=lambda: NOW)
    running, other, later = threading.Event(), threading.Event(), threading.Event()

    with cancellations.watching("t1", 1, running), cancellations.watching("t2", 1, other):
        cancellations.cancel([("t1", 1)], at=NOW)
        assert running.is_set()
        assert not other.is_set()
    with cancellations.watching("t1", 1, later):
        assert later.is_set()  # cancelled before it started: set at once

    finished = threading.Event()
    with cancellations.watching("t3", 1, finished):
        pass
    cancellations.cancel([("t3", 1)], at=NOW)
    assert not finished.is_set()


def _record(payload: Payload | None, offset: int, *, raw: bytes | None = None) -> ReceivedRecord:
    if payload is None:
        return ReceivedRecord(TOPICS.workflow_events, 0, offset, b"wf-1", raw)
    encoded = default_codec().encode(Event(payload, source="test", time=NOW))
    return ReceivedRecord(
        TOPICS.workflow_events, 0, offset, encoded.key, encoded.value, encoded.headers
    )


def _cancelled(*attempts: tuple[str, int]) -> WorkflowCancelled:
    return WorkflowCancelled(
        workflow_id="wf-1",
        type="test.echo",
        reason="no longer needed",
        cancelled_by="ada",
        tasks=[
            TaskAttemptRef(
                workflow_id="wf-1", task_id=task_id, step="say", capability="echo", attempt=n
            )
            for task_id, n in attempts
        ],
    )


def test_the_listener_takes_cancellations_and_skips_every_other_record() -> None:
    cancellations = Cancellations(clock=lambda: NOW)
    bus = MemoryBus()
    bus.admin().ensure_topics([TopicSpec(TOPICS.workflow_events, 1)])
    listener = CancellationListener(
        bus.subscriber("g", [TOPICS.workflow_events], "c"),
        cancellations,
        default_codec(),
        threading.Event(),
    )
    started = WorkflowStarted(workflow_id="wf-1", type="test.echo", steps=["say"])
    broken = _record(_cancelled(("t9", 1)), 2)
    broken = ReceivedRecord(
        broken.topic, 0, 2, broken.key, b'{"workflow_id": 1}', broken.headers
    )  # a workflow.cancelled whose body breaks its schema

    listener.take(
        [
            _record(started, 0),
            _record(None, 1, raw=b"not an event"),
            broken,
            _record(_cancelled(("t1", 1), ("t2", 2)), 3),
        ]
    )

    assert listener.seen == 1
    assert len(cancellations) == 2
    assert cancellations.is_cancelled("t1", 1)
    assert cancellations.is_cancelled("t2", 2)


class Work(BaseModel):
    fail: bool = False


class Done(BaseModel):
    cancelled: bool


RUNS: list[str] = []
CANCEL_DURING_RUN = Cancellations(clock=lambda: NOW)


@agent("stoppable", version="test")
def stoppable(task: Work, ctx: AgentContext) -> Done:
    """Counts its runs; cancels its own attempt through the registry when asked to."""
    RUNS.append(ctx.task.task_id)
    if task.fail:
        CANCEL_DURING_RUN.cancel([(ctx.task.task_id, ctx.task.attempt)], at=NOW)
        assert ctx.cancelled
        raise RuntimeError("stopped: cancelled")
    return Done(cancelled=ctx.cancelled)


def _delivery(task_id: str, **task_input: Any) -> Delivery:
    payload = TaskDispatched(
        workflow_id="wf-1",
        task_id=task_id,
        step="say",
        capability="stoppable",
        attempt=1,
        goal_type="test.echo",
        input=task_input,
        deadline=_at(30).isoformat(),
    )
    encoded = default_codec().encode(Event(payload, source="waypost/orchestrator"))
    record = ReceivedRecord(
        TOPICS.tasks("stoppable"), 0, 0, encoded.key, encoded.value, encoded.headers
    )
    return Delivery(record, default_codec().decode(record.value, record.headers))


def _worker(cancellations: Cancellations, **options: Any) -> tuple[AgentWorker, MemoryBus]:
    bus = MemoryBus()
    bus.admin().ensure_topics([TopicSpec(TOPICS.results, 1)])
    worker = AgentWorker(
        agent=stoppable,
        publisher=bus.publisher("worker"),
        codec=default_codec(),
        topics=TOPICS,
        instance="host:7",
        resources={},
        cancellations=cancellations,
        clock=lambda: NOW,
        **options,
    )
    return worker, bus


def test_an_attempt_known_cancelled_is_not_run_and_gets_no_result() -> None:
    RUNS.clear()
    cancellations = Cancellations(clock=lambda: NOW)
    cancellations.cancel([("gone", 1)], at=NOW)
    worker, bus = _worker(cancellations)

    unfinished = worker.handle([_delivery("gone"), _delivery("kept")])

    assert unfinished is None  # both handled: the batch is committed
    assert RUNS == ["kept"]
    assert worker.not_run_cancelled == 1
    (record,) = bus.broker.records(TOPICS.results)
    result = default_codec().decode(record.value, record.headers).payload
    assert isinstance(result, TaskCompleted)
    assert result.task_id == "kept"


def test_a_handler_that_raises_once_cancelled_is_not_tried_again() -> None:
    RUNS.clear()
    worker, bus = _worker(CANCEL_DURING_RUN, max_local_attempts=3)

    worker.handle([_delivery("raising", fail=True)])

    assert RUNS == ["raising"]  # once, although three local attempts were allowed
    (record,) = bus.broker.records(TOPICS.results)
    failed = default_codec().decode(record.value, record.headers).payload
    assert isinstance(failed, TaskFailed)
    assert (failed.error.type, failed.error.retryable) == ("RuntimeError", False)


def _as_structured(record: ReceivedRecord) -> ReceivedRecord:
    """The same event in structured mode: its attributes and data in one JSON value."""
    headers = dict(record.headers or [])
    event = {
        name.removeprefix("ce_"): value.decode() if isinstance(value, bytes) else value
        for name, value in headers.items()
        if name.startswith("ce_")
    }
    event["data"] = json.loads(record.value or b"null")
    event["datacontenttype"] = "application/json"
    return ReceivedRecord(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        json.dumps(event).encode(),
        [("content-type", b"application/cloudevents+json")],
    )


def test_the_listener_takes_a_structured_mode_cancellation_too() -> None:
    cancellations = Cancellations(clock=lambda: NOW)
    bus = MemoryBus()
    bus.admin().ensure_topics([TopicSpec(TOPICS.workflow_events, 1)])
    listener = CancellationListener(
        bus.subscriber("g", [TOPICS.workflow_events], "c"),
        cancellations,
        default_codec(),
        threading.Event(),
    )
    started = WorkflowStarted(workflow_id="wf-1", type="test.echo", steps=["say"])

    listener.take(
        [
            _as_structured(_record(started, 0)),
            _as_structured(_record(_cancelled(("t1", 1)), 1)),
        ]
    )

    assert listener.seen == 1
    assert cancellations.is_cancelled("t1", 1)
