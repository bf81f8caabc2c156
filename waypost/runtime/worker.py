"""Running an agent: task in, typed handler call, result out.

Each task becomes exactly one result event (``task.completed`` or ``task.failed``) on
the results topic. A batch's results are published and acknowledged before the consumer
loop commits the batch's offsets, so a worker that dies mid-batch has its tasks
delivered again rather than lost; the orchestrator applies a repeated result once.

A task whose deadline passed gets no result (the orchestrator has dispatched it again),
unless it carries ``waypost-replay-of``: a dead letter an analyst replayed on purpose,
whose workflow waits for exactly that attempt.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pydantic

from waypost.bus.base import Publisher
from waypost.bus.deadletter import REPLAY_OF_HEADER
from waypost.bus.loop import Delivery
from waypost.bus.records import OutgoingRecord
from waypost.errors import InvalidEvent, NonRetryableError, PublishError, UnexpectedEvent
from waypost.events import (
    AgentInfo,
    Codec,
    ErrorInfo,
    Event,
    Payload,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    Usage,
    utcnow,
)
from waypost.events.storable import value_problem
from waypost.sdk import Agent, AgentContext, AgentResult, TaskInfo
from waypost.topics import Topics

log = logging.getLogger(__name__)
_MAX_NOTES = 50
_MAX_NOTE_LENGTH = 2000  # schemas/common.v1.json: reasoning items


@dataclass
class AgentWorker:
    """Turns task deliveries of one capability into published results.

    Results go out at least every ``publish_interval_s`` while a batch runs, so a slow
    handler does not hold back the results of the fast ones before it; a result the
    broker does not acknowledge is sent again (never recomputed) until it is, or until
    ``stop``: then the batch stays uncommitted and its tasks are delivered again.
    ``batch_size`` shrinks the batches of slow handlers to about ``batch_budget_s`` of
    work, so a worker polls often enough to stay in its consumer group.
    """

    agent: Agent[Any, Any]
    publisher: Publisher
    codec: Codec
    topics: Topics
    instance: str
    resources: dict[type, Any]
    max_local_attempts: int = 1
    clock: Callable[[], datetime] = utcnow
    stop: threading.Event = field(default_factory=threading.Event)
    publish_interval_s: float = 1.0
    batch_budget_s: float = 10.0
    handled: int = 0
    _seconds_per_task: float | None = None

    def handle(self, deliveries: Sequence[Delivery]) -> None:
        """Run every task of a batch and publish the results (raises if not acknowledged)."""
        for delivery in deliveries:
            if not isinstance(delivery.event.payload, TaskDispatched):
                raise UnexpectedEvent(
                    f"agents consume task.dispatched events, not {delivery.event.ce_type}",
                    event_type=delivery.event.type,
                )
        pending: list[OutgoingRecord] = []
        last_publish = time.monotonic()
        for delivery in deliveries:
            record = self._execute(delivery)
            if record is not None:
                pending.append(record)
            if pending and time.monotonic() - last_publish >= self.publish_interval_s:
                self._publish(pending)
                pending, last_publish = [], time.monotonic()
        if pending:
            self._publish(pending)

    def batch_size(self, limit: int) -> int:
        """How many tasks to poll: fewer when handlers are slow."""
        if not self._seconds_per_task:
            return limit
        return max(1, min(limit, int(self.batch_budget_s / self._seconds_per_task)))

    def _publish(self, records: list[OutgoingRecord]) -> None:
        delay = 0.5
        while True:
            outcome = self.publisher.send(records)
            self.handled += len(outcome.delivered)
            if not outcome.failed:
                return
            records = [records[index] for index in sorted(outcome.failed)]
            log.warning(
                "%d result(s) not acknowledged (%s); sending them again",
                len(records),
                next(iter(outcome.failed.values())),
            )
            if self.stop.wait(delay):
                raise PublishError(
                    f"stopping with {len(records)} result(s) unacknowledged; their tasks "
                    "will be delivered again"
                )
            delay = min(delay * 2, 10.0)

    def _observe(self, seconds: float) -> None:
        previous = self._seconds_per_task
        self._seconds_per_task = seconds if previous is None else 0.8 * previous + 0.2 * seconds

    def _execute(self, delivery: Delivery) -> OutgoingRecord | None:
        task = delivery.event.payload
        assert isinstance(task, TaskDispatched)
        deadline = datetime.fromisoformat(task.deadline)
        replay_of = delivery.record.header(REPLAY_OF_HEADER)
        if deadline < self.clock():
            if replay_of is None:
                log.info(
                    "dropping %s attempt %d of workflow %s: its deadline passed; the "
                    "orchestrator has re-dispatched it",
                    task.step,
                    task.attempt,
                    task.workflow_id,
                )
                return None
            # A dead letter replayed on purpose: its workflow waits for this very attempt.
            log.info(
                "running %s attempt %d of workflow %s past its deadline: it is a replay of "
                "dead letter %s",
                task.step,
                task.attempt,
                task.workflow_id,
                replay_of.decode(errors="replace"),
            )
        context = AgentContext(
            task=TaskInfo(
                workflow_id=task.workflow_id,
                task_id=task.task_id,
                step=task.step,
                capability=task.capability,
                attempt=task.attempt,
                goal_type=task.goal_type,
                deadline=deadline,
            ),
            resources=self.resources,
        )
        started = time.perf_counter()
        outcome = self._run(task, context)
        self._observe(time.perf_counter() - started)
        usage = Usage(
            input_tokens=context.input_tokens,
            output_tokens=context.output_tokens,
            cost_usd=context.cost_usd,
            duration_ms=(time.perf_counter() - started) * 1000,
        )
        try:
            encoded = self._encode(delivery, self._payload(task, outcome, context, usage))
        except (InvalidEvent, pydantic.ValidationError) as exc:
            # A result that breaks its schema (the handler's doing): report it as a
            # failure rather than let the task be dead-lettered without an answer.
            error = ErrorInfo(type="InvalidOutput", message=str(exc)[:2000], retryable=False)
            encoded = self._encode(delivery, self._payload(task, error, context, Usage()))
        return OutgoingRecord(self.topics.results, encoded.key, encoded.value, encoded.headers)

    def _encode(self, delivery: Delivery, payload: Payload) -> Any:
        event = Event(
            payload,
            source=f"waypost/agent/{self.agent.capability}",
            subject=getattr(payload, "task_id", None),
            traceparent=delivery.event.traceparent,
            tracestate=delivery.event.tracestate,
        )
        return self.codec.encode(event)

    def _run(self, task: TaskDispatched, context: AgentContext) -> AgentResult[Any] | ErrorInfo:
        try:
            task_input = self.agent.input_model.model_validate(task.input)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
            )
            return ErrorInfo(type="InvalidInput", message=problems, retryable=False)
        error: ErrorInfo | None = None
        for attempt in range(1, self.max_local_attempts + 1):
            try:
                result = self.agent.run(task_input, context)
                problem = value_problem(result.output.model_dump(mode="json"))
                if problem is not None:
                    # The same input would produce the same output: do not retry.
                    return ErrorInfo(type="InvalidOutput", message=problem, retryable=False)
                return result
            except NonRetryableError as exc:
                return ErrorInfo(type=type(exc).__name__, message=str(exc), retryable=False)
            except Exception as exc:
                log.warning(
                    "%s failed on task %s (local attempt %d/%d): %s\n%s",
                    self.agent.capability,
                    task.task_id,
                    attempt,
                    self.max_local_attempts,
                    exc,
                    traceback.format_exc(limit=5),
                )
                error = ErrorInfo(type=type(exc).__name__, message=str(exc), retryable=True)
        assert error is not None
        return error

    def _payload(
        self,
        task: TaskDispatched,
        outcome: AgentResult[Any] | ErrorInfo,
        context: AgentContext,
        usage: Usage,
    ) -> Payload:
        common: dict[str, Any] = {
            "workflow_id": task.workflow_id,
            "task_id": task.task_id,
            "step": task.step,
            "capability": task.capability,
            "attempt": task.attempt,
            "usage": usage,
            "agent": AgentInfo(
                capability=self.agent.capability,
                version=self.agent.version,
                instance=self.instance,
            ),
        }
        notes = [note[:_MAX_NOTE_LENGTH] for note in context.notes]
        if isinstance(outcome, ErrorInfo):
            return TaskFailed(error=outcome, reasoning=notes[:_MAX_NOTES], **common)
        reasoning = [n[:_MAX_NOTE_LENGTH] for n in [*notes, *outcome.reasoning]][:_MAX_NOTES]
        return TaskCompleted(
            output=outcome.output.model_dump(mode="json"),
            confidence=outcome.confidence,
            reasoning=reasoning,
            escalate=outcome.escalate[:2000] if outcome.escalate else None,
            **common,
        )
