"""What reviewers do to escalations: decide, comment, claim, unclaim, assign.

Each operation locks the escalation's workflow row first (as the orchestrator does
before it changes a workflow), so reviewers, SLA timers and the orchestrator never
interleave. A decision is accepted only on the version and digest the reviewer saw and
only once: the escalation becomes ``decided`` (version + 1) and a ``decision.recorded``
event is queued in the same transaction; the orchestrator applies it when the event
arrives (or, if it was lost, from the escalation row).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, select

from orchestrator.errors import OrchestratorError
from orchestrator.playbooks.versions import PlaybookVersions
from orchestrator.publishing.outbox import OutboxRows
from orchestrator.publishing.records import Outgoing, escalation_traceparent
from orchestrator.store import audit, outbox
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.audit import AuditEntry
from orchestrator.store.tables import escalations
from orchestrator.workflow.review import (
    FALLBACK,
    FALLBACK_ACTIONS,
    POLICY_APPROVAL,
    POLICY_APPROVAL_ACTIONS,
)
from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    ReviewDecision,
    WorkflowState,
)
from waypost.events import DecisionRecorded, Event, new_id
from waypost.events.storable import value_problem

Action = Literal["approve", "edit", "reject", "retry"]
ACTIONS: tuple[Action, ...] = ("approve", "edit", "reject", "retry")


class ReviewError(OrchestratorError):
    """A reviewer's request that cannot be carried out; ``status`` is its HTTP status."""

    status = 400

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.detail = detail


class EscalationNotFound(ReviewError):
    """No such escalation."""

    status = 404


class ReviewConflict(ReviewError):
    """The escalation changed since the reviewer saw it, or someone else holds it."""

    status = 409


class InvalidDecision(ReviewError):
    """The decision itself is incomplete or invalid (a reject without a reason, an edit
    that breaks the step's output schema)."""

    status = 422


@dataclass(frozen=True, slots=True)
class Reviewer:
    """Who acts, and whether they may act on escalations someone else holds."""

    name: str
    may_override: bool = False  # admins may decide escalations claimed by others


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """A decision as the reviewer submitted it, bound to what they saw."""

    escalation_id: str
    action: Action
    version: int
    digest: str
    output: Mapping[str, Any] | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """A decision that won; ``outbox`` holds its event, to publish after commit."""

    decision_id: str
    escalation: EscalationState
    outbox: OutboxRows


@dataclass
class Reviews:
    """Reviewer operations on the store, with the playbooks to check edits against."""

    versions: PlaybookVersions
    outgoing: Outgoing
    # Told (action, seconds the escalation waited) of every decision (for metrics).
    on_decided: Callable[[str, float], None] | None = None

    def decide(
        self, conn: Connection, *, request: DecisionRequest, reviewer: Reviewer, now: datetime
    ) -> Accepted:
        """Accept a decision; ReviewError (404/409/422) says why not."""
        _check_storable(reason=request.reason, output=request.output, version=request.version)
        state, escalation = _locked(conn, request.escalation_id)
        _check_current(escalation, request.version, request.digest)
        _check_holder(escalation, reviewer)
        self._check_decision(conn, state, escalation, request)
        decision = ReviewDecision(
            id=new_id(),
            action=request.action,
            reviewer=reviewer.name,
            decided_at=now,
            output=dict(request.output) if request.output is not None else None,
            reason=request.reason,
        )
        decided = escalation.evolve(
            status=EscalationStatus.DECIDED, version=escalation.version + 1, decision=decision
        )
        workflow_rows.save(
            conn,
            before={state.id: state},
            after={state.id: state.with_escalation(decided)},
            now=now,
        )
        audit.record(
            conn,
            entries=[
                _entry(
                    reviewer.name,
                    "decide",
                    state,
                    escalation,
                    now,
                    decision=request.action,
                    reason=request.reason,
                    decision_id=decision.id,
                )
            ],
        )
        rows = self._publish(conn, state, escalation, decision, request.version, now)
        if self.on_decided is not None:
            waited = max(0.0, (now - escalation.opened_at).total_seconds())
            self.on_decided(decision.action, waited)
        return Accepted(decision.id, decided, rows)

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
        """Add a comment (any status; it changes nothing but the record)."""
        text = text.strip()
        if not text:
            raise InvalidDecision("a comment needs some text")
        _check_storable(comment=text, version=version)
        state, escalation = _locked(conn, escalation_id)
        audit.record(
            conn, entries=[_entry(reviewer.name, "comment", state, escalation, now, text=text)]
        )
        decision = ReviewDecision(new_id(), "comment", reviewer.name, now, reason=text)
        return self._publish(conn, state, escalation, decision, version, now)

    def claim(
        self, conn: Connection, *, escalation_id: str, reviewer: Reviewer, now: datetime
    ) -> EscalationState:
        """Take an open escalation (claiming your own again changes nothing)."""
        state, escalation = _locked(conn, escalation_id)
        _check_open(escalation)
        if escalation.assignee == reviewer.name:
            return escalation
        if escalation.assignee is not None and not reviewer.may_override:
            raise ReviewConflict(
                f"claimed by {escalation.assignee}; ask them or an admin to reassign it",
                assignee=escalation.assignee,
            )
        return self._set_assignee(conn, state, escalation, reviewer.name, reviewer, "claim", now)

    def unclaim(
        self, conn: Connection, *, escalation_id: str, reviewer: Reviewer, now: datetime
    ) -> EscalationState:
        """Give an escalation back to its group."""
        state, escalation = _locked(conn, escalation_id)
        _check_open(escalation)
        if escalation.assignee is None:
            return escalation
        _check_holder(escalation, reviewer)
        return self._set_assignee(conn, state, escalation, None, reviewer, "unclaim", now)

    def assign(
        self,
        conn: Connection,
        *,
        escalation_id: str,
        assignee: str,
        reviewer: Reviewer,
        now: datetime,
    ) -> EscalationState:
        """Hand an escalation to a named reviewer (admins)."""
        _check_storable(assignee=assignee)
        state, escalation = _locked(conn, escalation_id)
        _check_open(escalation)
        return self._set_assignee(conn, state, escalation, assignee, reviewer, "assign", now)

    def _set_assignee(
        self,
        conn: Connection,
        state: WorkflowState,
        escalation: EscalationState,
        assignee: str | None,
        reviewer: Reviewer,
        action: str,
        now: datetime,
    ) -> EscalationState:
        changed = escalation.evolve(assignee=assignee, claimed_at=now if assignee else None)
        workflow_rows.save(
            conn,
            before={state.id: state},
            after={state.id: state.with_escalation(changed)},
            now=now,
        )
        audit.record(
            conn,
            entries=[_entry(reviewer.name, action, state, escalation, now, assignee=assignee)],
        )
        return changed

    def _check_decision(
        self,
        conn: Connection,
        state: WorkflowState,
        escalation: EscalationState,
        request: DecisionRequest,
    ) -> None:
        if request.action not in ACTIONS:
            raise InvalidDecision(f"unknown action {request.action!r}; use one of {ACTIONS}")
        if escalation.kind == FALLBACK and request.action not in FALLBACK_ACTIONS:
            raise InvalidDecision(
                "every attempt of this step failed, so there is no output to approve; "
                "edit (supply the output), retry or reject"
            )
        if escalation.kind == POLICY_APPROVAL and request.action not in POLICY_APPROVAL_ACTIONS:
            raise InvalidDecision(
                "this step waits for the approval of an action, so there is no output to "
                "edit; approve the action, retry the step or reject it"
            )
        if request.action == "reject" and not (request.reason or "").strip():
            raise InvalidDecision("a rejection needs a reason")
        if request.action != "edit":
            return
        if request.output is None:
            raise InvalidDecision("an edit needs the edited output")
        problem = value_problem(request.output)
        if problem is not None:
            raise InvalidDecision(f"the edited output cannot be stored: {problem}")
        playbook = self.versions.for_state(conn, state)
        if playbook is None:
            raise InvalidDecision(f"no playbook for {state.type!r} to check the edit against")
        problems = playbook.step(escalation.step).output_problems(request.output)
        if problems:
            raise InvalidDecision(
                "the edited output breaks the step's output schema: "
                + "; ".join(f"{where}: {message}" for where, message in problems),
                errors=[{"field": where, "message": message} for where, message in problems],
            )

    def _publish(
        self,
        conn: Connection,
        state: WorkflowState,
        escalation: EscalationState,
        decision: ReviewDecision,
        version: int,
        now: datetime,
    ) -> OutboxRows:
        payload = DecisionRecorded(
            escalation_id=escalation.id,
            workflow_id=state.id,
            task_id=escalation.task_id,
            action=decision.action,  # type: ignore[arg-type]
            reviewer=decision.reviewer,
            version=version,
            digest=escalation.digest,
            output=dict(decision.output) if decision.output is not None else None,
            reason=decision.reason if decision.action != "comment" else None,
            comment=decision.reason if decision.action == "comment" else None,
        )
        traceparent, tracestate = state.traceparent, state.tracestate
        if decision.action != "comment":
            traceparent, tracestate = self._review_span(state, escalation, decision, now)
        event = Event(
            payload,
            source="waypost/review",
            id=decision.id,
            time=now,
            subject=escalation.id,
            traceparent=traceparent,
            tracestate=tracestate,
        )
        record = self.outgoing.record(self.outgoing.topics.decisions, event)
        ids = outbox.enqueue(conn, records=[record])
        return [(ids[0], record)]

    def _review_span(
        self,
        state: WorkflowState,
        escalation: EscalationState,
        decision: ReviewDecision,
        now: datetime,
    ) -> tuple[str | None, str | None]:
        """Record the time the escalation waited for this decision as a span under the
        escalation's; the decision event continues from it."""
        parent = escalation_traceparent(state, escalation.id)
        traceparent, tracestate = self.outgoing.tracing.finished_span(
            f"review {escalation.step}",
            parent=parent or state.traceparent,
            start=escalation.opened_at,
            end=now,
            attributes={
                "waypost.workflow.id": state.id,
                "waypost.task.id": escalation.task_id,
                "waypost.escalation.id": escalation.id,
                "waypost.escalation.kind": escalation.kind,
                "waypost.review.reviewer": decision.reviewer,
                "waypost.review.action": decision.action,
                "waypost.review.wait_s": max(0.0, (now - escalation.opened_at).total_seconds()),
            },
        )
        return traceparent, tracestate or state.tracestate


_MAX_VERSION = 2**31 - 1


def _check_storable(*, version: int | None = None, **values: Any) -> None:
    """422 for reviewer input the database or the event cannot hold."""
    if version is not None and not 1 <= version <= _MAX_VERSION:
        raise InvalidDecision(f"version must be between 1 and {_MAX_VERSION}")
    for name, value in values.items():
        problem = value_problem(value) if value is not None else None
        if problem is not None:
            raise InvalidDecision(f"{name} cannot be stored: {problem}")


def _locked(conn: Connection, escalation_id: str) -> tuple[WorkflowState, EscalationState]:
    if "\x00" in escalation_id:
        raise EscalationNotFound(f"no escalation {escalation_id!r}")
    workflow_id = conn.execute(
        select(escalations.c.workflow_id).where(escalations.c.id == escalation_id)
    ).scalar_one_or_none()
    if workflow_id is None:
        raise EscalationNotFound(f"no escalation {escalation_id!r}")
    state = workflow_rows.lock(conn, ids=[workflow_id])[workflow_id]
    return state, state.escalations[escalation_id]


def _check_open(escalation: EscalationState) -> None:
    if escalation.status is not EscalationStatus.PENDING:
        raise ReviewConflict(_closed(escalation), escalation_status=escalation.status.value)


def _check_current(escalation: EscalationState, version: int, digest: str) -> None:
    _check_open(escalation)
    if version != escalation.version or digest != escalation.digest:
        raise ReviewConflict(
            f"the escalation changed since you saw it (you saw version {version}, it is at "
            f"version {escalation.version}); reload it and decide again",
            version=escalation.version,
        )


def _check_holder(escalation: EscalationState, reviewer: Reviewer) -> None:
    if escalation.assignee not in (None, reviewer.name) and not reviewer.may_override:
        raise ReviewConflict(
            f"claimed by {escalation.assignee}; ask them or an admin to reassign it",
            assignee=escalation.assignee,
        )


def _closed(escalation: EscalationState) -> str:
    decision = escalation.decision
    if decision is not None:
        return (
            f"already decided: {decision.action} by {decision.reviewer} at "
            f"{decision.decided_at.isoformat(timespec='seconds')}"
        )
    return f"the escalation is {escalation.status.value}; nothing is waiting for a decision"


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
