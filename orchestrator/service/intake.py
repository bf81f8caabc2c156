"""The orchestrator's consumer: goals and agent results, a batch per transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from orchestrator.service.applier import Applier
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.workflows import NewWorkflow
from orchestrator.workflow.messages import GoalAccepted, Input, TaskAttemptFailed, TaskSucceeded
from orchestrator.workflow.state import TaskError
from waypost.bus.loop import Delivery
from waypost.errors import UnexpectedEvent
from waypost.events import Event, GoalSubmitted, TaskCompleted, TaskFailed

log = logging.getLogger(__name__)


def to_input(event: Event) -> tuple[str, Input]:
    """The state-machine input an event stands for, with its workflow id."""
    payload = event.payload
    if isinstance(payload, GoalSubmitted):
        return event.id, GoalAccepted()
    if isinstance(payload, TaskCompleted):
        return payload.workflow_id, TaskSucceeded(
            task_id=payload.task_id,
            attempt=payload.attempt,
            output=payload.output,
            confidence=payload.confidence,
            reasoning=tuple(payload.reasoning),
            usage=payload.usage.model_dump(),
            agent=payload.agent.model_dump(),
        )
    if isinstance(payload, TaskFailed):
        error = payload.error
        return payload.workflow_id, TaskAttemptFailed(
            task_id=payload.task_id,
            attempt=payload.attempt,
            error=TaskError(error.type, error.message, error.retryable),
        )
    raise UnexpectedEvent(
        f"the orchestrator does not consume {event.ce_type} events; "
        "it reads goal.submitted, task.completed and task.failed",
        event_type=event.type,
    )


@dataclass
class Intake:
    """Applies a batch of deliveries in one transaction, then wakes the relay."""

    engine: Engine
    applier: Applier
    clock: Callable[[], datetime]
    on_commit: Callable[[], None]

    def handle(self, deliveries: Sequence[Delivery]) -> None:
        """Record new goals, then apply every event in order to its locked workflow."""
        inputs = [to_input(d.event) for d in deliveries]
        now = self.clock()
        goals = [
            NewWorkflow(
                id=d.event.id,
                type=d.event.payload.type,
                input=d.event.payload.input,
                accepted_at=now,
                traceparent=d.event.traceparent,
                tracestate=d.event.tracestate,
            )
            for d in deliveries
            if isinstance(d.event.payload, GoalSubmitted)
        ]
        with self.engine.begin() as conn:
            workflow_rows.insert_accepted(conn, new=goals)
            states = workflow_rows.lock(conn, ids=[workflow_id for workflow_id, _ in inputs])
            applied = self.applier.apply(conn, states=states, inputs=inputs, now=now)
        if applied.published:
            self.on_commit()
