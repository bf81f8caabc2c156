"""The escalations API: list, read, claim, unclaim, assign, decide, comment."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from orchestrator.review import ACTIONS, DecisionRequest
from orchestrator.store import escalations as escalation_rows
from orchestrator.store.escalations import InboxFilter, InboxRow
from review_ui import review
from review_ui.auth.principal import Principal, api_roles
from review_ui.auth.roles import ASSIGN, DECIDE, READ
from review_ui.deps import ConnectionDep, StateDep
from review_ui.problems import Problem
from waypost.events import utcnow

router = APIRouter(tags=["escalations"])
Reader = Annotated[Principal, Depends(api_roles(READ))]
Decider = Annotated[Principal, Depends(api_roles(DECIDE))]
Assigner = Annotated[Principal, Depends(api_roles(ASSIGN))]


class EscalationSummaryPublic(BaseModel):
    """An escalation in a listing."""

    id: str
    workflow_id: str
    goal_type: str
    step: str
    capability: str
    kind: str
    reason: str
    status: str
    priority: int
    group: str
    assignee: str | None
    version: int
    digest: str
    opened_at: datetime
    due_at: datetime
    sla: Literal["ok", "warning", "overdue"]
    summary: str
    confidence: float | None

    @classmethod
    def of(cls, row: InboxRow, now: datetime) -> EscalationSummaryPublic:
        """The public view of an inbox row."""
        return cls(
            id=row.id,
            workflow_id=row.workflow_id,
            goal_type=row.goal_type,
            step=row.step,
            capability=row.capability,
            kind=row.kind,
            reason=row.reason,
            status=row.status,
            priority=row.priority,
            group=row.group,
            assignee=row.assignee,
            version=row.version,
            digest=row.digest,
            opened_at=row.opened_at,
            due_at=row.due_at,
            sla=row.sla(now),
            summary=row.summary,
            confidence=row.confidence,
        )


class EscalationPagePublic(BaseModel):
    """A page of escalations."""

    items: list[EscalationSummaryPublic]
    total: int
    page: int
    pages: int


class DecisionPublic(BaseModel):
    """A decision on an escalation."""

    id: str
    action: str
    reviewer: str
    decided_at: datetime
    output: dict[str, Any] | None
    reason: str | None


class EscalationPublic(BaseModel):
    """An escalation: what the reviewer is shown (``content``) and its state."""

    id: str
    workflow_id: str
    step: str
    kind: str
    reason: str
    status: str
    priority: int
    group: str
    assignee: str | None
    version: int
    digest: str = Field(description="SHA-256 of the canonical JSON of content")
    content: dict[str, Any]
    opened_at: datetime
    due_at: datetime
    warn_at: datetime
    overdue: bool
    decision: DecisionPublic | None


class DecisionCreate(BaseModel):
    """A decision, bound to the version and digest the reviewer saw."""

    action: Literal["approve", "edit", "reject", "retry"] = Field(
        description="approve the output, edit it, reject (reason required) or retry"
    )
    version: int = Field(ge=1, le=2**31 - 1)
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    output: dict[str, Any] | None = Field(None, description="the edited output (edit)")
    reason: str | None = Field(None, max_length=4000, description="why (required to reject)")


class DecisionAccepted(BaseModel):
    """The accepted decision; the workflow resumes when the orchestrator applies it."""

    decision_id: str
    escalation_id: str
    version: int


class CommentCreate(BaseModel):
    """A comment on an escalation."""

    text: str = Field(min_length=1, max_length=4000)
    version: int = Field(ge=1, le=2**31 - 1)


class AssignCreate(BaseModel):
    """Whom to hand an escalation to."""

    assignee: str = Field(min_length=1, max_length=200)


@router.get("/escalations", response_model=EscalationPagePublic)
def list_escalations(
    connection: ConnectionDep,
    _: Reader,
    status: Annotated[
        Literal["pending", "decided", "resolved", "any"],
        Query(description="'any' lists escalations of every status"),
    ] = "pending",
    goal_type: Annotated[str | None, Query(max_length=100)] = None,
    capability: Annotated[str | None, Query(max_length=100)] = None,
    priority: Annotated[int | None, Query(ge=1, le=5)] = None,
    assignee: Annotated[str | None, Query(max_length=200, description="'' = unassigned")] = None,
    group: Annotated[str | None, Query(max_length=100)] = None,
    sla: Annotated[Literal["ok", "warning", "overdue"] | None, Query()] = None,
    sort: Annotated[Literal["priority", "due", "newest", "oldest"], Query()] = "priority",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> EscalationPagePublic:
    """Escalations matching the filters (default: pending, most urgent first)."""
    for value in (goal_type, capability, assignee, group):
        if value is not None and "\x00" in value:
            raise Problem(422, "Invalid filter", "filters must not contain the NUL character")
    now = utcnow()
    found = escalation_rows.inbox(
        connection,
        filters=InboxFilter(
            None if status == "any" else status,
            goal_type,
            capability,
            priority,
            assignee,
            group,
            sla,
        ),
        now=now,
        sort=sort,
        page=page,
        page_size=page_size,
    )
    return EscalationPagePublic(
        items=[EscalationSummaryPublic.of(r, now) for r in found.rows],
        total=found.total,
        page=found.page,
        pages=found.pages,
    )


@router.get("/escalations/{escalation_id}", response_model=EscalationPublic)
def get_escalation(escalation_id: str, connection: ConnectionDep, _: Reader) -> EscalationPublic:
    """One escalation with the exact content its digest covers."""
    found = escalation_rows.get(connection, escalation_id=escalation_id)
    if found is None:
        raise Problem(404, "Escalation not found", f"no escalation {escalation_id!r}")
    workflow, escalation = found
    decision = escalation.decision
    return EscalationPublic(
        id=escalation.id,
        workflow_id=workflow.id,
        step=escalation.step,
        kind=escalation.kind,
        reason=escalation.reason,
        status=escalation.status.value,
        priority=escalation.priority,
        group=escalation.group,
        assignee=escalation.assignee,
        version=escalation.version,
        digest=escalation.digest,
        content=dict(escalation.content),
        opened_at=escalation.opened_at,
        due_at=escalation.due_at,
        warn_at=escalation.warn_at,
        overdue=escalation.overdue,
        decision=DecisionPublic(
            id=decision.id,
            action=decision.action,
            reviewer=decision.reviewer,
            decided_at=decision.decided_at,
            output=dict(decision.output) if decision.output is not None else None,
            reason=decision.reason,
        )
        if decision is not None
        else None,
    )


@router.post(
    "/escalations/{escalation_id}/decision",
    response_model=DecisionAccepted,
    status_code=202,
    responses={
        404: {"description": "No such escalation."},
        409: {"description": "Decided already, changed since you saw it, or claimed by another."},
        422: {
            "description": "A reject without a reason, an edit breaking the output schema, "
            "an action this kind of escalation does not allow, or a retry with no attempt left."
        },
    },
)
def decide(
    escalation_id: str, body: DecisionCreate, state: StateDep, principal: Decider
) -> DecisionAccepted:
    """Decide an escalation; exactly one decision per escalation is accepted."""
    request = DecisionRequest(
        escalation_id, body.action, body.version, body.digest, body.output, body.reason
    )
    accepted = review.decide(state, principal, request)
    return DecisionAccepted(
        decision_id=accepted.decision_id,
        escalation_id=escalation_id,
        version=accepted.escalation.version,
    )


@router.post(
    "/escalations/{escalation_id}/comments",
    status_code=201,
    responses={
        404: {"description": "No such escalation."},
        409: {"description": "The escalation changed since the version you sent: read it again."},
        422: {"description": "An empty comment."},
    },
)
def comment(
    escalation_id: str, body: CommentCreate, state: StateDep, principal: Decider
) -> dict[str, str]:
    """Comment on the version of an escalation you read."""
    review.comment(
        state, principal, escalation_id=escalation_id, text=body.text, version=body.version
    )
    return {"status": "recorded"}


@router.post("/escalations/{escalation_id}/claim", response_model=EscalationPublic)
def claim(
    escalation_id: str, state: StateDep, connection: ConnectionDep, principal: Decider
) -> EscalationPublic:
    """Claim an escalation for yourself."""
    review.claim(state, principal, escalation_id)
    return get_escalation(escalation_id, connection, principal)


@router.post("/escalations/{escalation_id}/unclaim", response_model=EscalationPublic)
def unclaim(
    escalation_id: str, state: StateDep, connection: ConnectionDep, principal: Decider
) -> EscalationPublic:
    """Give an escalation back to its group."""
    review.unclaim(state, principal, escalation_id)
    return get_escalation(escalation_id, connection, principal)


@router.post("/escalations/{escalation_id}/assign", response_model=EscalationPublic)
def assign(
    escalation_id: str,
    body: AssignCreate,
    state: StateDep,
    connection: ConnectionDep,
    principal: Assigner,
) -> EscalationPublic:
    """Hand an escalation to a reviewer (admins)."""
    review.assign(state, principal, escalation_id, body.assignee)
    return get_escalation(escalation_id, connection, principal)


__all__ = ["ACTIONS", "router"]
