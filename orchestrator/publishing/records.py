"""Turning state-machine commands into the Kafka records they publish, and recording the
spans those records stand for."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

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
    StorePlan,
)
from orchestrator.workflow.state import EscalationState, ReviewDecision, WorkflowState
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
from waypost.telemetry.tracing import derived_traceparent, headers_of
from waypost.topics import Topics

SOURCE = "waypost/orchestrator"
_RECENT_SPANS = 50_000  # derived span keys remembered, so a span is recorded once


class _Once:
    """The keys of the derived spans this process recorded lately (bounded, oldest
    forgotten first): a dispatch or escalation built again, because the transaction
    that wrote it rolled back and its input was applied once more, keeps the span it
    has instead of getting a second one with the same id."""

    def __init__(self, size: int = _RECENT_SPANS) -> None:
        self._size = size
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def first(self, key: str) -> bool:
        """True the first time ``key`` is seen (and remember it)."""
        with self._lock:
            if key in self._seen:
                return False
            self._seen[key] = None
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)
            return True


@dataclass(slots=True)
class ReviewWait:
    """The time an escalation waited for a reviewer's decision, as a span under the
    escalation's. ``headers`` (traceparent, tracestate) make it the parent of the
    decision's event; the span itself is recorded only by ``record``, which the caller
    calls once the decision committed, so a decision that rolls back leaves none."""

    headers: tuple[str | None, str | None]
    span: Span | None
    start: datetime
    end: datetime

    def record(self) -> None:
        """Record the span (once)."""
        if self.span is not None:
            self.span.end(end_time=max(_nanos(self.end), _nanos(self.start)))
            self.span = None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Builds the records for commands, on the right topics, in one trace per workflow."""

    topics: Topics
    codec: Codec
    source: str = SOURCE
    tracing: Tracing = field(default=NO_TRACING)
    _traced: _Once = field(default_factory=_Once, init=False, compare=False, repr=False)

    def for_commands(
        self, state: WorkflowState, commands: Iterable[Command]
    ) -> list[OutgoingRecord]:
        """Records for every command of one decision that publishes an event. The spans
        of dispatches and escalations are not recorded here: ``trace_commands`` does."""
        return [
            self._record(state, command)
            for command in commands
            # Audit rows and stored plans, not events.
            if not isinstance(command, RecordReviewEvent | StorePlan)
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
                self._dispatch(state, command.dispatch),
                exhaustion,
                group=self.topics.agent_group(capability),
            )
        if isinstance(command, AnnounceTaskEscalated):
            escalation = command.escalation
            payload = TaskEscalated(
                workflow_id=state.id,
                task_id=escalation.task_id,
                step=escalation.step,
                capability=state.capability_of(escalation),
                attempt=escalation.attempt,
                escalation_id=escalation.id,
                reason=escalation.reason,
                version=escalation.version,
                digest=escalation.digest,
                priority=escalation.priority,
                due_at=escalation.due_at.isoformat(),
            )
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

    def _dispatch(self, state: WorkflowState, command: DispatchTask) -> OutgoingRecord:
        """A task.dispatched record; built again from the same state, it is the same bytes
        (its id, time and trace context are the attempt's; its input's keys sorted, as
        the database does not keep their order), which is what its dead letter must be.
        It carries the approvals reviewers gave to the task's actions."""
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
        return self.record(topic, event)

    def trace_commands(self, state: WorkflowState, commands: Iterable[Command]) -> None:
        """Record the spans of the dispatches (``create <topic>``) and escalations
        (``escalate <step>``) among ``commands``, in the current span's trace context,
        once it is known their records are written. Their ids are derived from the
        dispatch and escalation ids; each is recorded once by this process, however
        often its records are built (a transaction retried after a rollback)."""
        if not self.tracing.enabled:
            return
        for command in commands:
            if isinstance(command, DispatchTask):
                self._dispatch_span(state, command)
            elif isinstance(command, AnnounceTaskEscalated):
                self._escalation_span(state, command)

    def _dispatch_span(self, state: WorkflowState, command: DispatchTask) -> None:
        task = command.task
        event_id = dispatch_id(task.id, task.attempt)
        if not self._traced.first(event_id):
            return
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
        if not self._traced.first(_escalation_key(escalation.id)):
            return
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

    def review_wait(
        self,
        state: WorkflowState,
        escalation: EscalationState,
        decision: ReviewDecision,
    ) -> ReviewWait:
        """``review <step>``: the time ``escalation`` waited for ``decision``, a span under
        the escalation's (linked to the current span, the reviewer's request), started
        now and recorded by ``ReviewWait.record``."""
        parent = escalation_traceparent(state, escalation.id) or state.traceparent
        now = decision.decided_at
        provider = self.tracing.provider
        if provider is None:
            return ReviewWait((parent, state.tracestate), None, escalation.opened_at, now)
        waited = max(0.0, (now - escalation.opened_at).total_seconds())
        current = trace.get_current_span().get_span_context()
        # Started, not ended: an SDK span is exported when it ends, so one whose decision
        # rolls back is never recorded. (Tracing has no such span yet, so it is made on
        # the provider here.)
        span = provider.get_tracer("waypost").start_span(
            f"review {escalation.step}",
            context=_remote_parent(parent),
            attributes={
                "waypost.workflow.id": state.id,
                "waypost.task.id": escalation.task_id,
                "waypost.escalation.id": escalation.id,
                "waypost.escalation.kind": escalation.kind,
                "waypost.review.reviewer": decision.reviewer,
                "waypost.review.action": decision.action,
                "waypost.review.wait_s": waited,
            },
            links=[Link(current)] if current.is_valid else None,
            start_time=_nanos(escalation.opened_at),
        )
        traceparent, tracestate = headers_of(span)
        headers = (traceparent, tracestate or state.tracestate)
        return ReviewWait(headers, span, escalation.opened_at, now)

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


def _remote_parent(traceparent: str | None) -> otel_context.Context:
    """A context whose current span is the one ``traceparent`` names (an empty context,
    which starts a new trace, without one)."""
    if not traceparent:
        return otel_context.Context()
    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def _sorted_keys(value: Any) -> Any:
    """``value`` with the keys of every object in it sorted."""
    if isinstance(value, Mapping):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value
