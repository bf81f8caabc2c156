"""Cancelling a workflow (pure): a person stops it before it finishes.

A workflow that is accepted, planning or running may be cancelled; one that completed, failed or
was cancelled already may not (the refusal names its status). Cancelling ends it as
``cancelled`` with the person's reason: every unfinished task is cancelled (its open
attempt closed, its lease and retry timer stopped), every open escalation is resolved
without a decision, so it leaves the reviewers' inbox and a decision made on it is no
longer applied, and each of those is written to the audit trail as the person's doing.
A ``workflow.cancelled`` event announces it, naming the tasks that were dispatched and
may still be running.
From then on the workflow is finished: a late result, a retry or a decision for it
changes nothing and is reported as not applied (``machine.decide``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orchestrator.workflow.messages import AnnounceWorkflowCancelled, Decision, RecordReviewEvent
from orchestrator.workflow.state import (
    EscalationStatus,
    TaskStatus,
    WorkflowState,
    WorkflowStatus,
)
from orchestrator.workflow.transitions import close_open

CANCELLED = "workflow_cancelled"  # why escalations it closed were resolved (audit detail)


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Who cancels the workflow, and why (shown wherever the workflow is)."""

    actor: str
    reason: str


@dataclass(frozen=True, slots=True)
class CancelRefused:
    """Why a workflow cannot be cancelled: it has already finished, as ``status``."""

    status: WorkflowStatus
    message: str


def refuse_cancel(state: WorkflowState) -> CancelRefused | None:
    """None if the workflow may be cancelled, else why not."""
    if not state.status.finished:
        return None
    return CancelRefused(
        state.status,
        f"workflow {state.id} is already {state.status}; only an accepted, planning or "
        "running workflow can be cancelled",
    )


def cancel(state: WorkflowState, request: CancelRequest, now: datetime) -> Decision:
    """Cancel the workflow; the commands announce it and audit every escalation it
    closed. A workflow
    that has finished is not changed (``applied`` False, ``note`` says why)."""
    refusal = refuse_cancel(state)
    if refusal is not None:
        return Decision(state, applied=False, note=refusal.message)
    closed = close_open(state, now)
    cancelled = closed.evolve(
        status=WorkflowStatus.CANCELLED,
        reason=f"cancelled by {request.actor}: {request.reason}",
        failed_step=None,
        error=None,
        finished_at=now,
        dead_letter=None,
    )
    audits = tuple(
        RecordReviewEvent(
            closed.escalations[key],
            "resolved",
            request.actor,
            {"cause": CANCELLED, "reason": request.reason},
        )
        for key, escalation in state.escalations.items()
        if escalation.status is not EscalationStatus.RESOLVED
    )
    running = tuple(t for t in state.tasks.values() if t.status is TaskStatus.DISPATCHED)
    announce = AnnounceWorkflowCancelled(request.reason, request.actor, running)
    return Decision(cancelled, (announce, *audits))
