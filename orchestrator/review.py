"""Reviewer operations on the store: decide, comment, claim, unclaim, assign; and
cancelling a workflow, the other human action on workflows.

# Longer than 400 lines: every human action on a workflow (five reviewer operations and
# cancelling) shares the one lock-check-write-audit path here.

A thin adapter around the reviewer rules (``orchestrator/workflow/review.py``): each
operation locks the escalation's workflow row first (as the orchestrator does before it
changes a workflow, so reviewers, SLA timers and the orchestrator never interleave), asks
the rules, and writes what they allow in the caller's transaction: the escalation, an
audit row and, for decisions and comments, a ``decision.recorded`` event in the outbox.
A refusal becomes a ``ReviewError`` (404, 409 or 422) with the rules' message.

A decision is accepted only on the version and digest the reviewer saw and only once: the
escalation becomes ``decided`` (version + 1); the orchestrator applies it when its event
arrives (or, if it was lost, from the escalation row). Under four eyes
(``workflow/four_eyes.py``) an approval that needs another reviewer's leaves the
escalation pending (version + 1, audited, no event) until a different reviewer approves.
What a decision is observed by, the ``review`` span and the decision-time metric, is
recorded by ``committed``, which the caller calls once the transaction committed.

Cancelling locks the workflow row, asks the pure rules (``workflow/cancellation.py``)
and writes the cancelled workflow, its cancelled tasks and resolved escalations, and
audit rows (the cancellation, and each escalation it closed) in the caller's
transaction, with its ``workflow.cancelled`` event in the outbox. A workflow that is
unknown or finished becomes a ``CancelError`` (404, 409).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from orchestrator.errors import (
    EscalationNotFound,
    InvalidDecision,
    ReviewConflict,
    ReviewError,
    WorkflowFinished,
    WorkflowNotFound,
)
from orchestrator.planning.decisions import refuse_plan_decision
from orchestrator.playbooks.model import Step
from orchestrator.playbooks.versions import PlaybookVersions
from orchestrator.publishing.outbox import OutboxRows
from orchestrator.publishing.records import Outgoing, ReviewWait
from orchestrator.store import audit, outbox
from orchestrator.store import escalations as escalation_rows
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.audit import AuditEntry
from orchestrator.workflow import four_eyes
from orchestrator.workflow.cancellation import CancelRequest, cancel, refuse_cancel
from orchestrator.workflow.messages import AnnounceWorkflowCancelled, RecordReviewEvent
from orchestrator.workflow.planning import PLAN
from orchestrator.workflow.review import (
    ACTIONS,
    Action,
    DecisionRequest,
    Refusal,
    Reviewer,
    refuse_claim,
    refuse_closed,
    refuse_comment,
    refuse_decision,
    refuse_repeated_approval,
)
from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    ReviewDecision,
    TaskState,
    WorkflowState,
)
from waypost.bus.records import OutgoingRecord
from waypost.events import DecisionRecorded, Event, TaskAttemptRef, WorkflowCancelled, new_id
from waypost.events.storable import value_problem

__all__ = [
    "ACTIONS",
    "Accepted",
    "Action",
    "CancelRequest",
    "Cancelled",
    "DecisionRequest",
    "EscalationNotFound",
    "InvalidDecision",
    "ReviewConflict",
    "ReviewError",
    "Reviewer",
    "Reviews",
]

_MAX_VERSION = 2**31 - 1
_SOURCE = "waypost/review"


@dataclass(frozen=True, slots=True)
class Accepted:
    """A decision that won. ``outbox`` holds its event, to publish after commit; ``wait``
    is the time the escalation waited for it, recorded by ``Reviews.committed``.

    Under four eyes a first approval is accepted too, but decides nothing yet: the
    escalation stays pending for another reviewer (``complete`` is False), with no
    event and nothing to record."""

    decision_id: str
    escalation: EscalationState
    outbox: OutboxRows
    wait: ReviewWait | None

    @property
    def complete(self) -> bool:
        """True when the escalation is decided; False for an approval that waits for
        another reviewer's."""
        return self.escalation.status is not EscalationStatus.PENDING


@dataclass(frozen=True, slots=True)
class Cancelled:
    """A workflow as its cancellation left it; ``outbox`` holds its ``workflow.cancelled``
    event, to publish after commit."""

    state: WorkflowState
    outbox: OutboxRows


@dataclass
class Reviews:
    """Reviewer operations on the store, with the playbooks to check edits against."""

    versions: PlaybookVersions
    outgoing: Outgoing
    # Told (action, seconds the escalation waited) of every committed decision (metrics).
    on_decided: Callable[[str, float], None] | None = None

    def decide(
        self, conn: Connection, *, request: DecisionRequest, reviewer: Reviewer, now: datetime
    ) -> Accepted:
        """Accept a decision; ReviewError (404/409/422) says why not."""
        _check_storable(reason=request.reason, output=request.output, version=request.version)
        state, escalation = _locked(conn, request.escalation_id)
        if escalation.kind == PLAN:
            _refuse(
                refuse_plan_decision(
                    conn, self.versions.registry, state, escalation, request, reviewer
                )
                or refuse_repeated_approval(escalation, request.action, reviewer)
            )
        else:
            task, step = state.tasks[escalation.step], self._step(conn, state, escalation)
            _refuse(refuse_decision(escalation, task, step, request, reviewer))
        decision = ReviewDecision(
            id=new_id(),
            action=request.action,
            reviewer=reviewer.name,
            decided_at=now,
            output=dict(request.output) if request.output is not None else None,
            reason=request.reason,
        )
        decided = four_eyes.accept(escalation, decision)
        _save(conn, state, decided, now)
        entry = _entry(
            reviewer.name,
            "decide",
            state,
            escalation,
            now,
            decision=request.action,
            reason=request.reason,
            decision_id=decision.id,
            **(four_eyes.progress(decided) if decided.required_approvals > 1 else {}),
        )
        audit.record(conn, entries=[entry])
        final = decided.decision
        if decided.status is EscalationStatus.PENDING or final is None:
            # An approval another reviewer must join (four eyes): nothing resumes yet.
            return Accepted(decision.id, decided, [], None)
        wait = self.outgoing.review_wait(state, escalation, final)
        rows = self._publish(conn, state, escalation, final, request.version, wait.headers)
        return Accepted(decision.id, decided, rows, wait)

    def committed(self, accepted: Accepted) -> None:
        """The decision's transaction committed: record its ``review`` span and count the
        time its escalation waited (nothing for an approval that waits for another)."""
        if accepted.wait is None:
            return
        accepted.wait.record()
        decision = accepted.escalation.decision
        if self.on_decided is not None and decision is not None:
            opened = accepted.escalation.opened_at
            self.on_decided(
                decision.action, max(0.0, (decision.decided_at - opened).total_seconds())
            )

    def comment(
        self,
        conn: Connection,
        *,
        escalation_id: str,
        text: str,
        version: int,
        reviewer: Reviewer,
        now: datetime,
    ) -> OutboxRows:
        """Add a comment on the version the reviewer saw (any status: it changes nothing
        but the record)."""
        text = text.strip()
        _check_storable(comment=text, version=version)
        state, escalation = _locked(conn, escalation_id)
        _refuse(refuse_comment(escalation, text=text, version=version))
        audit.record(
            conn, entries=[_entry(reviewer.name, "comment", state, escalation, now, text=text)]
        )
        decision = ReviewDecision(new_id(), "comment", reviewer.name, now, reason=text)
        headers = (state.traceparent, state.tracestate)
        return self._publish(conn, state, escalation, decision, version, headers)

    def claim(
        self, conn: Connection, *, escalation_id: str, reviewer: Reviewer, now: datetime
    ) -> EscalationState:
        """Take a pending escalation (claiming your own again changes nothing)."""
        state, escalation = _locked(conn, escalation_id)
        _refuse(refuse_claim(escalation, reviewer))
        if escalation.assignee == reviewer.name:
            return escalation
        return _set_assignee(conn, state, escalation, reviewer.name, reviewer, "claim", now)

    def unclaim(
        self, conn: Connection, *, escalation_id: str, reviewer: Reviewer, now: datetime
    ) -> EscalationState:
        """Give a pending escalation back to its group (your own, or anyone's as admin)."""
        state, escalation = _locked(conn, escalation_id)
        _refuse(refuse_claim(escalation, reviewer))
        if escalation.assignee is None:
            return escalation
        return _set_assignee(conn, state, escalation, None, reviewer, "unclaim", now)

    def assign(
        self,
        conn: Connection,
        *,
        escalation_id: str,
        assignee: str,
        reviewer: Reviewer,
        now: datetime,
    ) -> EscalationState:
        """Hand a pending escalation to a named reviewer (admins)."""
        _check_storable(assignee=assignee)
        state, escalation = _locked(conn, escalation_id)
        _refuse(refuse_closed(escalation))
        return _set_assignee(conn, state, escalation, assignee, reviewer, "assign", now)

    def cancel(
        self, conn: Connection, *, workflow_id: str, request: CancelRequest, now: datetime
    ) -> Cancelled:
        """Cancel an accepted, planning or running workflow; WorkflowNotFound (404) or
        WorkflowFinished (409, naming its status) if not."""
        locked = workflow_rows.lock(conn, ids=[workflow_id])
        state = locked.get(workflow_id)
        if state is None:
            raise WorkflowNotFound(f"no workflow with id {workflow_id!r}")
        refusal = refuse_cancel(state)
        if refusal is not None:
            raise WorkflowFinished(refusal.message, workflow_status=str(refusal.status))
        decision = cancel(state, request, now)
        workflow_rows.save(
            conn, before={state.id: state}, after={state.id: decision.state}, now=now
        )
        entries = [
            AuditEntry(
                actor=request.actor,
                action="cancel",
                workflow_id=state.id,
                detail={"reason": request.reason, "was": str(state.status)},
                at=now,
            )
        ]
        entries += [
            _entry(c.actor, c.action, state, c.escalation, now, **c.detail)
            for c in decision.commands
            if isinstance(c, RecordReviewEvent)
        ]
        audit.record(conn, entries=entries)
        records = [
            self._announce(decision.state, c)
            for c in decision.commands
            if isinstance(c, AnnounceWorkflowCancelled)
        ]
        rows = list(zip(outbox.enqueue(conn, records=records), records, strict=True))
        return Cancelled(decision.state, rows)

    def _announce(self, state: WorkflowState, command: AnnounceWorkflowCancelled) -> OutgoingRecord:
        """The ``workflow.cancelled`` record, after a span that ends the workflow's trace
        (as ``workflow completed`` and ``workflow failed`` do)."""
        running = [
            TaskAttemptRef(workflow_id=state.id, task_id=t.id, **_where(t)) for t in command.running
        ]
        payload = WorkflowCancelled(
            workflow_id=state.id,
            type=state.type,
            reason=command.reason,
            cancelled_by=command.actor,
            tasks=running,
        )
        tracing = self.outgoing.tracing
        attributes = {"waypost.workflow.id": state.id, "waypost.workflow.status": "cancelled"}
        with tracing.span("workflow cancelled", attributes=attributes):
            parent, vendor = tracing.outgoing((state.traceparent, state.tracestate))
            event = Event(payload, _SOURCE, subject=state.id, traceparent=parent, tracestate=vendor)
            return self.outgoing.record(self.outgoing.topics.workflow_events, event)

    def _step(
        self, conn: Connection, state: WorkflowState, escalation: EscalationState
    ) -> Step | None:
        """The escalation's step as the playbook version that planned the workflow has it."""
        playbook = self.versions.for_state(conn, state)
        return playbook.step(escalation.step) if playbook is not None else None

    def _publish(
        self,
        conn: Connection,
        state: WorkflowState,
        escalation: EscalationState,
        decision: ReviewDecision,
        version: int,
        headers: tuple[str | None, str | None],
    ) -> OutboxRows:
        comment = decision.action == "comment"
        payload = DecisionRecorded(
            escalation_id=escalation.id,
            workflow_id=state.id,
            task_id=escalation.task_id,
            action=decision.action,  # type: ignore[arg-type]
            reviewer=decision.reviewer,
            version=version,
            digest=escalation.digest,
            output=dict(decision.output) if decision.output is not None else None,
            reason=None if comment else decision.reason,
            comment=decision.reason if comment else None,
        )
        event = Event(
            payload,
            source=_SOURCE,
            id=decision.id,
            time=decision.decided_at,
            subject=escalation.id,
            traceparent=headers[0],
            tracestate=headers[1],
        )
        record = self.outgoing.record(self.outgoing.topics.decisions, event)
        ids = outbox.enqueue(conn, records=[record])
        return [(ids[0], record)]


def _refuse(refusal: Refusal | None) -> None:
    """Raise the error a refusal of the rules stands for."""
    if refusal is None:
        return
    error = ReviewConflict if refusal.conflict else InvalidDecision
    raise error(refusal.message, **refusal.detail)


def _check_storable(*, version: int | None = None, **values: Any) -> None:
    """422 for reviewer input the database or the event cannot hold."""
    if version is not None and not 1 <= version <= _MAX_VERSION:
        raise InvalidDecision(f"version must be between 1 and {_MAX_VERSION}")
    for name, value in values.items():
        problem = value_problem(value) if value is not None else None
        if problem is not None:
            raise InvalidDecision(f"{name} cannot be stored: {problem}")


def _locked(conn: Connection, escalation_id: str) -> tuple[WorkflowState, EscalationState]:
    workflow_id = escalation_rows.workflow_of(conn, escalation_id=escalation_id)
    if workflow_id is None:
        raise EscalationNotFound(f"no escalation {escalation_id!r}")
    state = workflow_rows.lock(conn, ids=[workflow_id])[workflow_id]
    return state, state.escalations[escalation_id]


def _save(
    conn: Connection, state: WorkflowState, escalation: EscalationState, now: datetime
) -> None:
    workflow_rows.save(
        conn, before={state.id: state}, after={state.id: state.with_escalation(escalation)}, now=now
    )


def _set_assignee(
    conn: Connection,
    state: WorkflowState,
    escalation: EscalationState,
    assignee: str | None,
    reviewer: Reviewer,
    action: str,
    now: datetime,
) -> EscalationState:
    changed = escalation.evolve(assignee=assignee, claimed_at=now if assignee else None)
    _save(conn, state, changed, now)
    audit.record(
        conn, entries=[_entry(reviewer.name, action, state, escalation, now, assignee=assignee)]
    )
    return changed


def _entry(
    actor: str,
    action: str,
    state: WorkflowState,
    escalation: EscalationState,
    now: datetime,
    **detail: Any,
) -> AuditEntry:
    return AuditEntry(
        actor=actor,
        action=action,
        escalation_id=escalation.id,
        workflow_id=state.id,
        version=escalation.version,
        digest=escalation.digest,
        detail={k: v for k, v in detail.items() if v is not None},
        at=now,
    )


def _where(task: TaskState) -> dict[str, Any]:
    """Where a task's current attempt went: its step, capability and attempt number."""
    return {"step": task.step, "capability": task.capability, "attempt": task.attempt}
