"""Turning state-machine commands into the Kafka records they publish."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from opentelemetry.trace import SpanKind

from orchestrator.workflow.approvals import granted
from orchestrator.workflow.messages import (
    AnnounceTaskEscalated,
    AnnounceWorkflowCompleted,
    AnnounceWorkflowFailed,
    AnnounceWorkflowStarted,
    Command,
    DeadLetterTask,
    DispatchTask,
    RecordReviewEvent,
)
from orchestrator.workflow.state import WorkflowState
from orchestrator.workflow.transitions import dispatch_id
from waypost.bus.dead_letters import Exhaustion, exhausted
from waypost.bus.records import OutgoingRecord
from waypost.events import (
    ApprovalGrant,
    Codec,
    DeadLetterRef,
    ErrorInfo,
    Event,
    GoalSubmitted,
    Payload,
    TaskDispatched,
    TaskEscalated,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)
from waypost.telemetry import NO_TRACING, Tracing
from waypost.telemetry.tracing import derived_traceparent
from waypost.topics import Topics

SOURCE = "waypost/orchestrator"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Builds the records for commands, on the right topics, in one trace per workflow."""

    topics: Topics
    codec: Codec
    source: str = SOURCE
    tracing: Tracing = field(default=NO_TRACING)

    def for_commands(
        self, state: WorkflowState, commands: Iterable[Command]
    ) -> list[OutgoingRecord]:
        """Records for every command of one decision that publishes an event."""
        return [
            self._record(state, command)
            for command in commands
            if not isinstance(command, RecordReviewEvent)  # audit rows, not events
        ]

    def goal(
        self,
        *,
        goal_id: str,
        goal_type: str,
        goal_input: Mapping[str, Any],
        traceparent: str | None,
        source: str,
    ) -> OutgoingRecord:
        """A goal.submitted record (for goals accepted over HTTP)."""
        event = Event(
            GoalSubmitted(type=goal_type, input=dict(goal_input)),
            source=source,
            id=goal_id,
            subject=goal_id,
            traceparent=traceparent,
        )
        return self.record(self.topics.goals, event)

    def _record(self, state: WorkflowState, command: Command) -> OutgoingRecord:
        payload: Payload
        if isinstance(command, DispatchTask):
            return self._dispatch(state, command)
        if isinstance(command, DeadLetterTask):
            capability = command.dispatch.task.capability
            exhaustion = Exhaustion(
                error_type=command.error.type,
                error_message=command.error.message,
                attempts=command.attempts,
                first_failure=command.first_failure,
                last_failure=command.last_failure,
            )
            return exhausted(
                self._dispatch(state, command.dispatch, rebuilt=True),
                exhaustion,
                group=self.topics.agent_group(capability),
            )
        if isinstance(command, AnnounceTaskEscalated):
            escalation = command.escalation
            task = state.tasks[escalation.step]
            payload = TaskEscalated(
                workflow_id=state.id,
                task_id=escalation.task_id,
                step=escalation.step,
                capability=task.capability,
                attempt=escalation.attempt,
                escalation_id=escalation.id,
                reason=escalation.reason,
                version=escalation.version,
                digest=escalation.digest,
                priority=escalation.priority,
                due_at=escalation.due_at.isoformat(),
            )
            self._escalation_span(state, command)
            event = replace(
                self._event(state, payload),
                traceparent=escalation_traceparent(state, escalation.id) or state.traceparent,
            )
            return self.record(self.topics.workflow_events, event)
        if isinstance(command, AnnounceWorkflowStarted):
            payload = WorkflowStarted(
                workflow_id=state.id, type=state.type, steps=list(command.steps)
            )
        elif isinstance(command, AnnounceWorkflowCompleted):
            payload = WorkflowCompleted(
                workflow_id=state.id,
                type=state.type,
                output=dict(command.output),
                duration_ms=command.duration_ms,
            )
        else:
            assert isinstance(command, AnnounceWorkflowFailed)
            error = command.error
            payload = WorkflowFailed(
                workflow_id=state.id,
                type=state.type,
                reason=command.reason,
                step=command.step,
                error=ErrorInfo(type=error.type, message=error.message, retryable=error.retryable)
                if error is not None
                else None,
                dead_letter=DeadLetterRef(**command.dead_letter.as_dict())
                if command.dead_letter is not None
                else None,
            )
        if isinstance(command, AnnounceWorkflowStarted):
            return self.record(self.topics.workflow_events, self._event(state, payload))
        # The end of the workflow, as a span its workflow.completed/failed event follows.
        outcome = "completed" if isinstance(command, AnnounceWorkflowCompleted) else "failed"
        with self.tracing.span(
            f"workflow {outcome}",
            attributes={
                "waypost.workflow.id": state.id,
                "waypost.workflow.type": state.type,
                "waypost.workflow.status": outcome,
                "waypost.workflow.failed_step": getattr(command, "step", None),
            },
        ):
            return self.record(self.topics.workflow_events, self._event(state, payload))

    def _dispatch(
        self, state: WorkflowState, command: DispatchTask, *, rebuilt: bool = False
    ) -> OutgoingRecord:
        """A task.dispatched record; built again from the same state, it is the same bytes
        (its id, time and trace context are the attempt's; its input's keys sorted, as
        the database does not keep their order), which is what its dead letter must be.
        It carries the approvals reviewers gave to the task's actions. Unless ``rebuilt``
        it records the dispatch's ``create`` span."""
        task = command.task
        approvals = [
            ApprovalGrant(
                action=a.action,
                params_digest=a.params_digest,
                approved_by=a.approved_by,
                escalation_id=a.escalation_id,
            )
            for a in granted(state, task.id)
        ]
        payload = TaskDispatched(
            workflow_id=state.id,
            task_id=task.id,
            step=task.step,
            capability=task.capability,
            attempt=task.attempt,
            goal_type=state.type,
            input=_sorted_keys(dict(task.input or {})),
            deadline=command.deadline.isoformat(),
            approvals=approvals or None,
        )
        event_id = dispatch_id(task.id, task.attempt)
        topic = self.topics.tasks(task.capability)
        event = replace(
            self._event(state, payload),
            id=event_id,
            traceparent=derived_traceparent(state.traceparent, event_id) or state.traceparent,
            tracestate=state.tracestate,
        )
        if command.dispatched_at is not None:
            event = replace(event, time=command.dispatched_at)
        if not rebuilt:
            self._dispatch_span(state, command)
        return self.record(topic, event)

    def trace_commands(self, state: WorkflowState, commands: Iterable[Command]) -> None:
        """Record the spans of dispatches and escalations among ``commands`` (for records
        built under ``Tracing.quiet``, once it is known they are sent)."""
        for command in commands:
            if isinstance(command, DispatchTask):
                self._dispatch_span(state, command)
            elif isinstance(command, AnnounceTaskEscalated):
                self._escalation_span(state, command)

    def _dispatch_span(self, state: WorkflowState, command: DispatchTask) -> None:
        task = command.task
        event_id = dispatch_id(task.id, task.attempt)
        topic = self.topics.tasks(task.capability)
        self.tracing.derived_span(
            f"create {topic}",
            key=event_id,
            root=state.traceparent,
            kind=SpanKind.PRODUCER,
            at=command.dispatched_at,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": topic,
                "messaging.operation.type": "create",
                "messaging.message.id": event_id,
                "waypost.workflow.id": state.id,
                "waypost.task.id": task.id,
                "waypost.task.step": task.step,
                "waypost.task.attempt": task.attempt,
            },
        )

    def _escalation_span(self, state: WorkflowState, command: AnnounceTaskEscalated) -> None:
        escalation = command.escalation
        self.tracing.derived_span(
            f"escalate {escalation.step}",
            key=_escalation_key(escalation.id),
            root=state.traceparent,
            at=escalation.opened_at,
            attributes={
                "waypost.workflow.id": state.id,
                "waypost.task.id": escalation.task_id,
                "waypost.escalation.id": escalation.id,
                "waypost.escalation.kind": escalation.kind,
                "waypost.escalation.reason": escalation.reason[:500],
            },
        )

    def _event(self, state: WorkflowState, payload: Payload) -> Event:
        traceparent, tracestate = self.tracing.outgoing((state.traceparent, state.tracestate))
        return Event(
            payload,
            source=self.source,
            subject=getattr(payload, "task_id", state.id),
            traceparent=traceparent,
            tracestate=tracestate,
        )

    def record(self, topic: str, event: Event) -> OutgoingRecord:
        """An event encoded as a record for ``topic``."""
        encoded = self.codec.encode(event)
        return OutgoingRecord(topic, encoded.key, encoded.value, encoded.headers)


def escalation_traceparent(state: WorkflowState, escalation_id: str) -> str | None:
    """The context of an escalation's span (derived from its id, see
    ``waypost.telemetry.tracing``): what its events and its review continue from."""
    return derived_traceparent(state.traceparent, _escalation_key(escalation_id))


def _escalation_key(escalation_id: str) -> str:
    return f"escalation:{escalation_id}"


def _sorted_keys(value: Any) -> Any:
    """``value`` with the keys of every object in it sorted."""
    if isinstance(value, Mapping):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value
