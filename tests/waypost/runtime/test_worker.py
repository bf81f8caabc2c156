"""The agent worker: each task delivery becomes exactly one result event (or none if late)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from tests.support.agents import echo
from waypost import AgentContext, AgentResult, NonRetryableError, agent
from waypost.bus.base import PublishOutcome, TopicSpec
from waypost.bus.loop import Delivery
from waypost.bus.memory import MemoryBus
from waypost.bus.records import OutgoingRecord, ReceivedRecord
from waypost.errors import PublishError, UnexpectedEvent
from waypost.events import (
    Event,
    GoalSubmitted,
    Payload,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    default_codec,
    new_traceparent,
)
from waypost.runtime.worker import AgentWorker
from waypost.sdk import Agent
from waypost.topics import Topics

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
TOPICS = Topics("ns")
TRACEPARENT = new_traceparent()


def _task(task_input: dict[str, Any], *, capability: str = "echo", **changes: Any) -> Payload:
    fields: dict[str, Any] = {
        "workflow_id": "wf-1",
        "task_id": "task-1",
        "step": "say",
        "capability": capability,
        "attempt": 2,
        "goal_type": "test.echo",
        "input": task_input,
        "deadline": (NOW + timedelta(seconds=30)).isoformat(),
    }
    return TaskDispatched(**{**fields, **changes})


def _delivery(payload: Payload, offset: int = 0) -> Delivery:
    event = Event(payload, source="waypost/orchestrator", traceparent=TRACEPARENT)
    encoded = default_codec().encode(event)
    record = ReceivedRecord(
        TOPICS.tasks("echo"), 0, offset, encoded.key, encoded.value, encoded.headers
    )
    return Delivery(record, default_codec().decode(record.value, record.headers))


def _worker(
    handler: Agent[Any, Any] = echo,
    *,
    create_results_topic: bool = True,
    **options: Any,
) -> tuple[AgentWorker, MemoryBus]:
    bus = MemoryBus()
    if create_results_topic:
        bus.admin().ensure_topics([TopicSpec(TOPICS.results, 1)])
    worker = AgentWorker(
        agent=handler,
        publisher=bus.publisher("worker"),
        codec=default_codec(),
        topics=TOPICS,
        instance="host:7",
        resources=options.pop("resources", {}),
        clock=lambda: NOW,
        **options,
    )
    return worker, bus


def _results(bus: MemoryBus) -> list[Event]:
    return [default_codec().decode(r.value, r.headers) for r in bus.broker.records(TOPICS.results)]


def _only_result(bus: MemoryBus) -> Payload:
    (event,) = _results(bus)
    return event.payload


def test_a_task_becomes_one_completed_result() -> None:
    worker, bus = _worker()

    worker.handle([_delivery(_task({"text": "hi"}))])

    (event,) = _results(bus)
    result = event.payload
    assert isinstance(result, TaskCompleted)
    assert (result.workflow_id, result.task_id, result.step, result.capability) == (
        "wf-1",
        "task-1",
        "say",
        "echo",
    )
    assert result.attempt == 2
    assert result.output == {"text": "hi", "attempt": 2}
    assert result.confidence == 0.9
    assert result.reasoning == ["echoing 2 characters"]
    assert result.usage.duration_ms >= 0
    assert (result.agent.capability, result.agent.version, result.agent.instance) == (
        "echo",
        "test",
        "host:7",
    )
    assert worker.handled == 1


def test_a_result_continues_the_tasks_trace_and_is_keyed_by_workflow() -> None:
    worker, bus = _worker()

    worker.handle([_delivery(_task({"text": "hi"}))])

    (record,) = bus.broker.records(TOPICS.results)
    event = default_codec().decode(record.value, record.headers)
    assert record.key == b"wf-1"
    assert event.traceparent == TRACEPARENT
    assert (event.source, event.subject) == ("waypost/agent/echo", "task-1")


def test_every_task_of_a_batch_gets_its_own_result_in_order() -> None:
    worker, bus = _worker()
    deliveries = [
        _delivery(_task({"text": "one"}, task_id="t-1"), 0),
        _delivery(_task({"fail": "permanent"}, task_id="t-2"), 1),
        _delivery(_task({"text": "three"}, task_id="t-3"), 2),
    ]

    worker.handle(deliveries)

    results = [e.payload for e in _results(bus)]
    assert [(type(r).__name__, r.task_id) for r in results] == [  # type: ignore[attr-defined]
        ("TaskCompleted", "t-1"),
        ("TaskFailed", "t-2"),
        ("TaskCompleted", "t-3"),
    ]
    assert worker.handled == 3


def test_input_breaking_the_model_fails_without_retry() -> None:
    worker, bus = _worker()

    worker.handle([_delivery(_task({"text": 5, "sleep_s": "slow"}))])

    result = _only_result(bus)
    assert isinstance(result, TaskFailed)
    assert (result.error.type, result.error.retryable) == ("InvalidInput", False)
    assert "text: Input should be a valid string" in result.error.message
    assert "sleep_s: Input should be a valid number" in result.error.message


def test_a_non_retryable_error_is_reported_as_such() -> None:
    worker, bus = _worker()

    worker.handle([_delivery(_task({"fail": "permanent"}))])

    result = _only_result(bus)
    assert isinstance(result, TaskFailed)
    assert (result.error.type, result.error.message, result.error.retryable) == (
        "NonRetryableError",
        "asked to fail permanently",
        False,
    )
    assert (result.agent.capability, result.agent.instance) == ("echo", "host:7")


def test_any_other_error_is_retryable() -> None:
    worker, bus = _worker()

    worker.handle([_delivery(_task({"fail": "retryable"}))])

    result = _only_result(bus)
    assert isinstance(result, TaskFailed)
    assert (result.error.type, result.error.message, result.error.retryable) == (
        "RuntimeError",
        "asked to fail (attempt 2)",
        True,
    )


def test_a_task_past_its_deadline_gets_no_result() -> None:
    worker, bus = _worker()
    late = _task({"text": "hi"}, deadline=(NOW - timedelta(milliseconds=1)).isoformat())

    worker.handle([_delivery(late)])

    assert bus.broker.records(TOPICS.results) == []
    assert worker.handled == 0


def test_a_task_due_exactly_now_still_runs() -> None:
    worker, bus = _worker()

    worker.handle([_delivery(_task({"text": "hi"}, deadline=NOW.isoformat()))])

    assert isinstance(_only_result(bus), TaskCompleted)


def test_an_event_that_is_not_a_task_is_unexpected_and_nothing_runs() -> None:
    worker, bus = _worker()
    goal = _delivery(GoalSubmitted(type="test.echo", input={}))

    with pytest.raises(UnexpectedEvent, match=r"not waypost\.goal\.submitted") as caught:
        worker.handle([_delivery(_task({"text": "hi"})), goal])

    assert caught.value.event_type == "goal.submitted"
    assert bus.broker.records(TOPICS.results) == []


class _RefusesAndStops:
    """A publisher (our own interface) whose broker refuses everything; the first refusal
    also asks the worker to stop, as SIGTERM would."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def send(self, records: Sequence[OutgoingRecord]) -> PublishOutcome:
        self.stop.set()
        return PublishOutcome(failed={i: "broker unavailable" for i in range(len(records))})

    def close(self) -> None:
        pass


def test_stopping_with_an_unacknowledged_result_raises_so_the_batch_is_not_committed() -> None:
    stop = threading.Event()
    worker, _ = _worker(stop=stop, shutdown_grace_s=0)
    worker.publisher = _RefusesAndStops(stop)

    with pytest.raises(PublishError, match="1 result\\(s\\) unacknowledged"):
        worker.handle([_delivery(_task({"text": "hi"}))])

    assert (worker.handled, worker.completed) == (0, 0)


def test_a_batch_polled_after_stop_runs_nothing_and_comes_back_unfinished() -> None:
    stop = threading.Event()
    stop.set()
    worker, bus = _worker(stop=stop)
    deliveries = [_delivery(_task({"text": "hi"}, task_id=f"t-{i}"), i) for i in range(3)]

    assert worker.handle(deliveries) == deliveries

    assert bus.broker.records(TOPICS.results) == []


class _RefusesFirst:
    """A publisher (our own interface) whose broker refuses the first batch."""

    def __init__(self, bus: MemoryBus) -> None:
        self.inner = bus.publisher("worker")
        self.batches: list[int] = []

    def send(self, records: Sequence[OutgoingRecord]) -> PublishOutcome:
        self.batches.append(len(records))
        if len(self.batches) == 1:
            return PublishOutcome(failed={i: "broker unavailable" for i in range(len(records))})
        return self.inner.send(records)

    def close(self) -> None:
        self.inner.close()


def test_a_refused_result_is_sent_again_without_running_the_handler_again() -> None:
    calls: list[str] = []

    @agent("echo")
    def counting(task: Text) -> Text:
        calls.append(task.text)
        return task

    bus = MemoryBus()
    bus.admin().ensure_topics([TopicSpec(TOPICS.results, 1)])
    publisher = _RefusesFirst(bus)
    worker, _ = _worker(counting)
    worker.publisher = publisher

    worker.handle([_delivery(_task({"text": "hi"}))])

    assert calls == ["hi"]
    assert publisher.batches == [1, 1]
    assert [e.payload.output for e in _results(bus)] == [{"text": "hi"}]  # type: ignore[attr-defined]


class Text(BaseModel):
    text: str = ""


def _flaky(failures: int) -> tuple[Agent[Any, Any], list[int]]:
    calls: list[int] = []

    @agent("echo")
    def flaky(task: Text, ctx: AgentContext) -> Text:
        calls.append(ctx.task.attempt)
        if len(calls) <= failures:
            raise ConnectionError(f"blip {len(calls)}")
        return Text(text="ok")

    return flaky, calls


def test_local_attempts_retry_a_failing_handler_in_process() -> None:
    flaky, calls = _flaky(failures=2)
    worker, bus = _worker(flaky, max_local_attempts=3)

    worker.handle([_delivery(_task({}))])

    assert len(calls) == 3
    result = _only_result(bus)
    assert isinstance(result, TaskCompleted)
    assert result.output == {"text": "ok"}


def test_when_local_attempts_run_out_the_last_error_is_reported() -> None:
    flaky, calls = _flaky(failures=5)
    worker, bus = _worker(flaky, max_local_attempts=2)

    worker.handle([_delivery(_task({}))])

    assert len(calls) == 2
    result = _only_result(bus)
    assert isinstance(result, TaskFailed)
    assert (result.error.type, result.error.message) == ("ConnectionError", "blip 2")


def test_a_non_retryable_error_is_not_tried_again_locally() -> None:
    calls: list[None] = []

    @agent("echo")
    def refuse(task: Text) -> Text:
        calls.append(None)
        raise NonRetryableError("no")

    worker, _ = _worker(refuse, max_local_attempts=5)
    worker.handle([_delivery(_task({}))])

    assert len(calls) == 1


def test_usage_notes_and_resources_reach_the_result() -> None:
    class Greeting:
        word = "hello"

    @agent("echo")
    def greet(task: Text, ctx: AgentContext) -> AgentResult[Text]:
        ctx.add_usage(input_tokens=12, output_tokens=4, cost_usd=0.02)
        ctx.note("looked up the greeting")
        return AgentResult(
            Text(text=ctx.resource(Greeting).word), confidence=0.6, reasoning=["chose hello"]
        )

    worker, bus = _worker(greet, resources={Greeting: Greeting()})
    worker.handle([_delivery(_task({}))])

    result = _only_result(bus)
    assert isinstance(result, TaskCompleted)
    assert result.output == {"text": "hello"}
    assert result.confidence == 0.6
    assert result.reasoning == ["looked up the greeting", "chose hello"]
    assert (result.usage.input_tokens, result.usage.output_tokens) == (12, 4)
    assert result.usage.cost_usd == pytest.approx(0.02)


def test_reasoning_is_capped_at_fifty_notes() -> None:
    @agent("echo")
    def chatty(task: Text, ctx: AgentContext) -> Text:
        for i in range(60):
            ctx.note(f"note {i}")
        return Text()

    worker, bus = _worker(chatty)
    worker.handle([_delivery(_task({}))])

    result = _only_result(bus)
    assert isinstance(result, TaskCompleted)
    assert result.reasoning == [f"note {i}" for i in range(50)]


def test_a_handler_returning_the_wrong_model_is_a_retryable_failure() -> None:
    class Other(BaseModel):
        value: int = 0

    @agent("echo")
    def wrong(task: Text) -> Text:
        return Other()  # type: ignore[return-value]

    worker, bus = _worker(wrong)
    worker.handle([_delivery(_task({}))])

    result = _only_result(bus)
    assert isinstance(result, TaskFailed)
    assert (result.error.type, result.error.retryable) == ("TypeError", True)
    assert result.error.message == "agent 'echo' returned Other, expected Text"
