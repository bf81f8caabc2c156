"""The orchestrator's consumer: goals and agent results, a batch per transaction."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from opentelemetry.trace import Span
from sqlalchemy import Engine

from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.service.applier import Applier
from orchestrator.service.observations import NO_OBSERVER, Observer
from orchestrator.store import outbox
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.workflows import NewWorkflow
from orchestrator.workflow.messages import (
    ActionApproval,
    DecisionMade,
    GoalAccepted,
    Input,
    TaskAttemptFailed,
    TaskSucceeded,
)
from orchestrator.workflow.state import ReviewDecision, TaskError, WorkflowState
from waypost.bus.loop import Delivery
from waypost.errors import UnexpectedEvent
from waypost.events import DecisionRecorded, Event, GoalSubmitted, TaskCompleted, TaskFailed
from waypost.telemetry import Tracing

log = logging.getLogger(__name__)


def to_input(event: Event) -> tuple[str, Input] | None:
    """The state-machine input an event stands for, with its workflow id (None: an event
    that changes no workflow, such as a reviewer's comment)."""
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
            escalate=payload.escalate,
        )
    if isinstance(payload, TaskFailed):
        error, approval = payload.error, payload.approval
        return payload.workflow_id, TaskAttemptFailed(
            task_id=payload.task_id,
            attempt=payload.attempt,
            error=TaskError(error.type, error.message, error.retryable),
            approval=ActionApproval(
                action=approval.action,
                params_digest=approval.params_digest,
                params_size=approval.params_size,
                reason=approval.reason,
                scopes=tuple(approval.scopes),
                rule=approval.rule.model_dump(exclude_none=True) if approval.rule else None,
                risk=approval.risk,
                approvals=approval.approvals,
            )
            if approval is not None
            else None,
            reasoning=tuple(payload.reasoning),
        )
    if isinstance(payload, DecisionRecorded):
        if payload.action == "comment":
            return None
        decision = ReviewDecision(
            id=event.id,
            action=payload.action,
            reviewer=payload.reviewer,
            decided_at=event.time,
            output=payload.output,
            reason=payload.reason,
        )
        return payload.workflow_id, DecisionMade(
            payload.escalation_id, decision, payload.version, payload.digest
        )
    raise UnexpectedEvent(
        f"the orchestrator does not consume {event.ce_type} events; it reads "
        "goal.submitted, task.completed, task.failed and decision.recorded",
        event_type=event.type,
    )


@dataclass
class Intake:
    """Applies a batch of deliveries in one transaction, then publishes its events."""

    engine: Engine
    applier: Applier
    publisher: OutboxPublisher
    clock: Callable[[], datetime]
    metrics: Observer = field(default=NO_OBSERVER)
    group: str = "orchestrator"

    @property
    def tracing(self) -> Tracing:
        """The tracing the applier's events are produced under."""
        return self.applier.outgoing.tracing

    def handle(self, deliveries: Sequence[Delivery]) -> None:
        """Plan new goals, then apply every other event in order to its locked workflow."""
        now = self.clock()
        spans = [self._span(delivery) for delivery in deliveries]
        goals: list[NewWorkflow] = []
        goal_spans: list[Span] = []
        inputs: list[tuple[str, Input]] = []
        input_spans: list[Span] = []
        for delivery, span in zip(deliveries, spans, strict=True):
            event = delivery.event
            if isinstance(event.payload, GoalSubmitted):
                # A new workflow's trace hangs under the span that accepted its goal.
                traceparent, tracestate = self.tracing.context_of(
                    span, (event.traceparent, event.tracestate)
                )
                goals.append(
                    NewWorkflow(
                        id=event.id,
                        type=event.payload.type,
                        input=event.payload.input,
                        accepted_at=now,
                        traceparent=traceparent,
                        tracestate=tracestate,
                    )
                )
                goal_spans.append(span)
            else:
                found = to_input(event)
                if found is not None:
                    inputs.append(found)
                    input_spans.append(span)
        acknowledged = self.publisher.take_acknowledged()
        try:
            with self.engine.begin() as conn:
                # Rows of events acknowledged since the last batch go in this transaction.
                outbox.remove(conn, ids=acknowledged)
                planned, existing = self.applier.plan_new(
                    conn, goals=goals, now=now, causes=goal_spans
                )
                span_of_goal = {goal.id: span for goal, span in zip(goals, goal_spans, strict=True)}
                input_spans = [span_of_goal[workflow_id] for workflow_id in existing] + input_spans
                inputs = [(workflow_id, GoalAccepted()) for workflow_id in existing] + inputs
                states = workflow_rows.lock(conn, ids=[wid for wid, _ in inputs])
                _warn_about_reused_ids(goals, existing, states)
                applied = self.applier.apply(
                    conn, states=states, inputs=inputs, now=now, causes=input_spans
                )
        except BaseException:
            self.publisher.give_back(acknowledged)  # rolled back: still to be deleted
            for span in spans:
                span.end()
            raise
        self.metrics.observe([*planned.observations, *applied.observations])
        self.publisher.publish([*planned.outbox, *applied.outbox])
        for span in spans:
            span.end()

    def _span(self, delivery: Delivery) -> Span:
        event, record = delivery.event, delivery.record
        return self.tracing.start_processing(
            record.topic,
            traceparent=event.traceparent,
            tracestate=event.tracestate,
            attributes={
                "messaging.kafka.message.key": record.key.decode(errors="replace")
                if record.key
                else None,
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
                "messaging.message.id": event.id,
                "messaging.consumer.group.name": self.group,
                "waypost.event.type": event.type,
                "waypost.workflow.id": getattr(event.payload, "workflow_id", None),
                "waypost.task.id": getattr(event.payload, "task_id", None),
            },
        )

    def idle(self) -> None:
        """Nothing arrived: delete the outbox rows of acknowledged events now."""
        self.publisher.remove_acknowledged()


def _warn_about_reused_ids(
    goals: Sequence[NewWorkflow], existing: Sequence[str], states: Mapping[str, WorkflowState]
) -> None:
    """A goal id is the workflow id: the same id with other content is not a new goal."""
    by_id = {goal.id: goal for goal in goals}
    for workflow_id in existing:
        goal, state = by_id[workflow_id], states.get(workflow_id)
        if state is not None and (state.type, dict(state.input)) != (goal.type, dict(goal.input)):
            log.warning(
                "goal %s arrived again with a different type or input; it is ignored "
                "(goal ids must be unique: the first goal with an id makes the workflow)",
                workflow_id,
            )
