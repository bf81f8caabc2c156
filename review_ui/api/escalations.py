"""The escalations API: list, read, claim, unclaim, assign, decide, comment."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from orchestrator.review import ACTIONS, DecisionRequest
from orchestrator.store import escalations as escalation_rows
from orchestrator.store.escalations import InboxFilter, InboxRow
from orchestrator.workflow.state import ReviewDecision
from review_ui import review
from review_ui.auth.principal import Principal, api_roles
from review_ui.auth.roles import ASSIGN, DECIDE, READ
from review_ui.deps import ConnectionDep, StateDep
from review_ui.openapi import NO_NUL, PathText, problems
from review_ui.problems import Problem
from waypost.events import utcnow

router = APIRouter(tags=["escalations"])
Reader = Annotated[Principal, Depends(api_roles(READ))]
Decider = Annotated[Principal, Depends(api_roles(DECIDE))]
Assigner = Annotated[Principal, Depends(api_roles(ASSIGN))]
# Why a reviewer's request on one escalation is refused.
_WHY = {
    404: "No such escalation.",
    409: "Decided or closed already, changed since the version you sent (`version` is the "
    "current one), claimed by another reviewer (`assignee`), or approved by you already "
    "while it needs another reviewer's approval (four eyes).",
    422: "A body that breaks the schema or a rule in the operation's description.",
}
# Claim and unclaim send no body; decide, comment and assign do (400 and 422 for it).
_REFUSALS = problems(401, 403, 404, 409, 429, 503, why=_WHY)
_BODY_REFUSALS = problems(400, 401, 403, 404, 409, 422, 429, 503, why=_WHY)


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
    approvals: int = Field(0, description="approvals given so far (four eyes)")
    required_approvals: int = Field(1, description="different reviewers who must approve")

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
            approvals=row.approvals,
            required_approvals=row.required_approvals,
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

    @classmethod
    def of(cls, decision: ReviewDecision) -> DecisionPublic:
        """The public view of a decision (or of one approval)."""
        return cls(
            id=decision.id,
            action=decision.action,
            reviewer=decision.reviewer,
            decided_at=decision.decided_at,
            output=dict(decision.output) if decision.output is not None else None,
            reason=decision.reason,
        )


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
    required_approvals: int = Field(
        1, description="different reviewers who must approve (2: four eyes)"
    )
    approvals: list[DecisionPublic] = Field(
        default_factory=list,
        description="approve and edit decisions given so far to the output awaiting "
        "approval, oldest first (an edit's output is the one the others approve)",
    )


class DecisionCreate(BaseModel):
    """A decision, bound to the version and digest the reviewer saw."""

    action: Literal["approve", "edit", "reject", "retry"] = Field(
        description="approve the output, edit it, reject (reason required) or retry"
    )
    version: int = Field(ge=1, le=2**31 - 1)
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    output: dict[str, Any] | None = Field(None, description="the edited output (edit)")
    reason: str | None = Field(
        None, max_length=4000, pattern=NO_NUL, description="why (required to reject)"
    )


class DecisionAccepted(BaseModel):
    """The accepted decision; the workflow resumes when the orchestrator applies it.
    Under four eyes a first approval leaves the escalation ``pending`` for another
    reviewer's approval."""

    decision_id: str
    escalation_id: str
    version: int
    status: Literal["pending", "decided"] = Field(
        "decided", description="pending: the approval waits for another reviewer's"
    )
    approvals: int = Field(0, description="approvals given so far")
    required_approvals: int = Field(1, description="different reviewers who must approve")


class CommentCreate(BaseModel):
    """A comment on an escalation."""

    text: str = Field(
        min_length=1, max_length=4000, pattern=NO_NUL, description="not only white space"
    )
    version: int = Field(ge=1, le=2**31 - 1)


class AssignCreate(BaseModel):
    """Whom to hand an escalation to."""

    assignee: str = Field(
        min_length=1, max_length=200, pattern=NO_NUL, description="an enabled console user"
    )


def _escalation_id(
    escalation_id: PathText,
) -> str:
    """The path's escalation id; 404 for one with a NUL (no stored id has one)."""
    if "\x00" in escalation_id:
        raise Problem(404, "Escalation not found", f"no escalation {escalation_id!r}")
    return escalation_id


EscalationId = Annotated[str, Depends(_escalation_id)]


@router.get(
    "/escalations", response_model=EscalationPagePublic, responses=problems(401, 422, 429, 503)
)
def list_escalations(
    connection: ConnectionDep,
    _: Reader,
    status: Annotated[
        Literal["pending", "decided", "resolved", "any"],
        Query(description="'any' lists escalations of every status"),
    ] = "pending",
    goal_type: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    capability: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    priority: Annotated[int | None, Query(ge=1, le=5)] = None,
    assignee: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="'' = unassigned")
    ] = None,
    group: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    sla: Annotated[Literal["ok", "warning", "overdue"] | None, Query()] = None,
    sort: Annotated[Literal["priority", "due", "newest", "oldest"], Query()] = "priority",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> EscalationPagePublic:
    """Escalations matching the filters (default: pending, most urgent first)."""
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


@router.get(
    "/escalations/{escalation_id}",
    response_model=EscalationPublic,
    responses=problems(401, 404, 429, 503, why=_WHY),
)
def get_escalation(
    escalation_id: EscalationId, connection: ConnectionDep, _: Reader
) -> EscalationPublic:
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
        decision=DecisionPublic.of(decision) if decision is not None else None,
        required_approvals=escalation.required_approvals,
        approvals=[DecisionPublic.of(a) for a in escalation.approvals],
    )


@router.post(
    "/escalations/{escalation_id}/decision",
    response_model=DecisionAccepted,
    status_code=202,
    responses=_BODY_REFUSALS,
)
def decide(
    escalation_id: EscalationId, body: DecisionCreate, state: StateDep, principal: Decider
) -> DecisionAccepted:
    """Decide an escalation; exactly one decision per escalation is accepted.

    Rules the schema cannot state (each a 422): a reject needs a `reason` that is not
    only white space; an edit needs the edited `output`, which must pass the step's
    output schema; a fallback escalation (every attempt failed) cannot be approved, a
    policy approval cannot be edited; a retry needs an attempt left; `output` must
    contain no NUL character and no integer beyond 64 bits.

    Four eyes: when the escalation needs several reviewers (`required_approvals`), an
    approve or an edit is one approval; the escalation stays `pending` (its version goes
    up) until that many different reviewers approved the same output. Approving again
    after your own approval or edit is a 409."""
    request = DecisionRequest(
        escalation_id, body.action, body.version, body.digest, body.output, body.reason
    )
    accepted = review.decide(state, principal, request)
    escalation = accepted.escalation
    return DecisionAccepted(
        decision_id=accepted.decision_id,
        escalation_id=escalation_id,
        version=escalation.version,
        status="decided" if accepted.complete else "pending",
        approvals=len(escalation.approvals),
        required_approvals=escalation.required_approvals,
    )


@router.post(
    "/escalations/{escalation_id}/comments",
    status_code=201,
    responses=_BODY_REFUSALS,
)
def comment(
    escalation_id: EscalationId, body: CommentCreate, state: StateDep, principal: Decider
) -> dict[str, str]:
    """Comment on the version of an escalation you read (any status will do); 409 when
    the escalation is at another version."""
    review.comment(
        state, principal, escalation_id=escalation_id, text=body.text, version=body.version
    )
    return {"status": "recorded"}


@router.post(
    "/escalations/{escalation_id}/claim", response_model=EscalationPublic, responses=_REFUSALS
)
def claim(
    escalation_id: EscalationId, state: StateDep, connection: ConnectionDep, principal: Decider
) -> EscalationPublic:
    """Claim an escalation for yourself."""
    review.claim(state, principal, escalation_id)
    return get_escalation(escalation_id, connection, principal)


@router.post(
    "/escalations/{escalation_id}/unclaim", response_model=EscalationPublic, responses=_REFUSALS
)
def unclaim(
    escalation_id: EscalationId, state: StateDep, connection: ConnectionDep, principal: Decider
) -> EscalationPublic:
    """Give an escalation back to its group."""
    review.unclaim(state, principal, escalation_id)
    return get_escalation(escalation_id, connection, principal)


@router.post(
    "/escalations/{escalation_id}/assign",
    response_model=EscalationPublic,
    responses=_BODY_REFUSALS,
)
def assign(
    escalation_id: EscalationId,
    body: AssignCreate,
    state: StateDep,
    connection: ConnectionDep,
    principal: Assigner,
) -> EscalationPublic:
    """Hand an escalation to a reviewer (admins); 422 unless the assignee is an enabled
    console user."""
    review.assign(state, principal, escalation_id, body.assignee)
    return get_escalation(escalation_id, connection, principal)


__all__ = ["ACTIONS", "router"]
