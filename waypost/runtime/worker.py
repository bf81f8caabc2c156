"""Running an agent: task in, typed handler call, result out.

Each task becomes exactly one result event (``task.completed`` or ``task.failed``) on
the results topic. A batch's results are published and acknowledged before the consumer
loop commits the batch's offsets, so a worker that dies mid-batch has its tasks
delivered again rather than lost; the orchestrator applies a repeated result once.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pydantic

from waypost.bus.base import Publisher
from waypost.bus.loop import Delivery
from waypost.bus.records import OutgoingRecord
from waypost.errors import NonRetryableError, UnexpectedEvent
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


@dataclass
class AgentWorker:
    """Turns task deliveries of one capability into published results."""

    agent: Agent[Any, Any]
    publisher: Publisher
    codec: Codec
    topics: Topics
    instance: str
    resources: dict[type, Any]
    max_local_attempts: int = 1
    clock: Callable[[], datetime] = utcnow
    handled: int = 0

    def handle(self, deliveries: Sequence[Delivery]) -> None:
        """Run every task of a batch and publish the results (raises if not acknowledged)."""
        for delivery in deliveries:
            if not isinstance(delivery.event.payload, TaskDispatched):
                raise UnexpectedEvent(
                    f"agents consume task.dispatched events, not {delivery.event.ce_type}",
                    event_type=delivery.event.type,
                )
        records = [r for r in (self._execute(d) for d in deliveries) if r is not None]
        if records:
            self.publisher.send(records).raise_for_failures()
        self.handled += len(records)

    def _execute(self, delivery: Delivery) -> OutgoingRecord | None:
        task = delivery.event.payload
        assert isinstance(task, TaskDispatched)
        deadline = datetime.fromisoformat(task.deadline)
        if deadline < self.clock():
            log.info(
                "dropping %s attempt %d of workflow %s: its deadline passed; the orchestrator "
                "has re-dispatched it",
                task.step,
                task.attempt,
                task.workflow_id,
            )
            return None
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
        usage = Usage(
            input_tokens=context.input_tokens,
            output_tokens=context.output_tokens,
            cost_usd=context.cost_usd,
            duration_ms=(time.perf_counter() - started) * 1000,
        )
        payload = self._payload(task, outcome, context, usage)
        event = Event(
            payload,
            source=f"waypost/agent/{self.agent.capability}",
            subject=task.task_id,
            traceparent=delivery.event.traceparent,
            tracestate=delivery.event.tracestate,
        )
        encoded = self.codec.encode(event)
        return OutgoingRecord(self.topics.results, encoded.key, encoded.value, encoded.headers)

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
        if isinstance(outcome, ErrorInfo):
            return TaskFailed(error=outcome, reasoning=context.notes[:_MAX_NOTES], **common)
        reasoning = [*context.notes, *outcome.reasoning][:_MAX_NOTES]
        return TaskCompleted(
            output=outcome.output.model_dump(mode="json"),
            confidence=outcome.confidence,
            reasoning=reasoning,
            **common,
        )
