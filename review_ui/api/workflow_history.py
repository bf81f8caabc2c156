"""What happened to a workflow besides its tasks (the workflow page's sections):

GET /api/v1/workflows/{id}/escalations: its escalations with their decisions;
GET /api/v1/workflows/{id}/dead-letters: the dead letters its messages became (roles
    that may read dead letters);
GET /api/v1/workflows/{id}/timeline: every event, oldest first: accepted, started,
    each dispatch and result, escalations, reviewers' and operators' actions, dead
    letters, finished.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from orchestrator.workflow.state import EscalationState
from orchestrator.workflow.timeline import TimelineEvent
from review_ui import workflow_history
from review_ui.api.dead_letter_models import DeadLetterSummaryPublic
from review_ui.api.escalations import DecisionPublic
from review_ui.auth.principal import Principal, api_roles
from review_ui.auth.roles import DEAD_LETTERS, READ
from review_ui.deps import ConnectionDep, StateDep
from review_ui.openapi import PathText, problems
from review_ui.problems import Problem
from review_ui.workflow_history import WorkflowHistory

router = APIRouter(tags=["workflows"])
Reader = Annotated[Principal, Depends(api_roles(READ))]
Analyst = Annotated[Principal, Depends(api_roles(DEAD_LETTERS))]
WorkflowId = PathText
_NOT_FOUND = {404: "No such workflow."}


class WorkflowEscalationPublic(BaseModel):
    """One of a workflow's escalations (GET /api/v1/escalations/{id} has its content)."""

    id: str
    step: str
    attempt: int
    kind: str
    reason: str
    status: str
    priority: int
    group: str
    assignee: str | None
    opened_at: datetime
    due_at: datetime
    resolved_at: datetime | None
    decision: DecisionPublic | None
    required_approvals: int = Field(description="2: four eyes.")
    approvals: list[DecisionPublic] = Field(description="Approvals given so far, oldest first.")

    @classmethod
    def of(cls, escalation: EscalationState) -> WorkflowEscalationPublic:
        """The public view of an escalation of the workflow."""
        decision = escalation.decision
        return cls(
            id=escalation.id,
            step=escalation.step,
            attempt=escalation.attempt,
            kind=escalation.kind,
            reason=escalation.reason,
            status=escalation.status.value,
            priority=escalation.priority,
            group=escalation.group,
            assignee=escalation.assignee,
            opened_at=escalation.opened_at,
            due_at=escalation.due_at,
            resolved_at=escalation.resolved_at,
            decision=DecisionPublic.of(decision) if decision is not None else None,
            required_approvals=escalation.required_approvals,
            approvals=[DecisionPublic.of(a) for a in escalation.approvals],
        )


class TimelineEventPublic(BaseModel):
    """One thing that happened to a workflow."""

    at: datetime
    kind: str = Field(
        description="accepted, started, dispatched, result, escalation, decision, review, "
        "action (an operator's), dead_letter or finished."
    )
    title: str = Field(description="What happened, in a line.")
    step: str | None
    attempt: int | None
    actor: str | None = Field(description="Who did it (a person, or the system's name).")
    escalation_id: str | None
    dead_letter_id: int | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, event: TimelineEvent) -> TimelineEventPublic:
        """The public view of a timeline event."""
        return cls(
            at=event.at,
            kind=event.kind,
            title=event.title,
            step=event.step,
            attempt=event.attempt,
            actor=event.actor,
            escalation_id=event.escalation_id,
            dead_letter_id=event.dead_letter_id,
            detail=dict(event.detail),
        )


@router.get(
    "/workflows/{workflow_id}/escalations",
    response_model=list[WorkflowEscalationPublic],
    responses=problems(401, 404, 429, 503, why=_NOT_FOUND),
)
def workflow_escalations(
    workflow_id: WorkflowId, connection: ConnectionDep, state: StateDep, _: Reader
) -> list[WorkflowEscalationPublic]:
    """The workflow's escalations, oldest first, with their decisions."""
    found = _history(connection, state.settings.namespace, workflow_id)
    return [WorkflowEscalationPublic.of(e) for e in found.escalations]


@router.get(
    "/workflows/{workflow_id}/dead-letters",
    response_model=list[DeadLetterSummaryPublic],
    responses=problems(401, 403, 404, 429, 503, why=_NOT_FOUND),
)
def workflow_dead_letters(
    workflow_id: WorkflowId, connection: ConnectionDep, state: StateDep, _: Analyst
) -> list[DeadLetterSummaryPublic]:
    """The dead letters of the workflow's messages, newest first, whatever their status
    (at most 200: `GET /api/v1/dlq?workflow=ID` pages through all)."""
    found = _history(connection, state.settings.namespace, workflow_id)
    return [DeadLetterSummaryPublic.of(letter) for letter in found.dead_letters]


@router.get(
    "/workflows/{workflow_id}/timeline",
    response_model=list[TimelineEventPublic],
    responses=problems(401, 404, 429, 503, why=_NOT_FOUND),
)
def workflow_timeline(
    workflow_id: WorkflowId, connection: ConnectionDep, state: StateDep, _: Reader
) -> list[TimelineEventPublic]:
    """Everything that happened to the workflow, oldest first (with its newest 1,000
    audit entries)."""
    found = _history(connection, state.settings.namespace, workflow_id)
    return [TimelineEventPublic.of(event) for event in found.events]


def _history(connection: Connection, namespace: str, workflow_id: str) -> WorkflowHistory:
    found = workflow_history.load(connection, workflow_id=workflow_id, namespace=namespace)
    if found is None:
        raise Problem(404, "Workflow not found", f"no workflow with id {workflow_id!r}")
    return found
