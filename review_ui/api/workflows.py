"""GET /api/v1/workflows: workflows searched by status, type, time, id prefix, trigger and
input text, sorted, a keyset page at a time, with counts per status;
GET /api/v1/workflows/{id}: workflow status, tasks, outputs and attempts (its
escalations, dead letters and timeline: review_ui/api/workflow_history.py);
GET /api/v1/workflows/{id}/plan-attempts: what the LLM planner was told and answered;
POST /api/v1/workflows/{id}/cancel: stop a workflow that has not finished."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from orchestrator.dead_letters.filters import parse_time
from orchestrator.errors import FilterError
from orchestrator.planning import store as plan_store
from orchestrator.store import workflow_search
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.workflow_pages import Order, Sort, TimeRange, WorkflowFilter
from orchestrator.workflow.state import WorkflowStatus
from review_ui import operations
from review_ui.api import workflow_history
from review_ui.api.models import WorkflowPagePublic, WorkflowPublic
from review_ui.auth.principal import Principal, api_roles
from review_ui.auth.roles import READ, SUBMIT_GOALS
from review_ui.deps import ConnectionDep, StateDep
from review_ui.openapi import NO_NUL, PathText, problems
from review_ui.problems import Problem
from waypost.events import utcnow
from waypost.events.storable import value_problem

router = APIRouter(tags=["workflows"])
# A workflow's escalations, dead letters and timeline, served with the workflow.
router.include_router(workflow_history.router)
Reader = Annotated[Principal, Depends(api_roles(READ))]
# Whoever may start a workflow may stop one.
Canceller = Annotated[Principal, Depends(api_roles(SUBMIT_GOALS))]


class WorkflowCancel(BaseModel):
    """Why the workflow is cancelled (kept on the workflow and in the audit trail)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, pattern=NO_NUL)


@router.get(
    "/workflows/{workflow_id}",
    response_model=WorkflowPublic,
    responses=problems(401, 404, 429, 503, why={404: "No such workflow."}),
)
def get_workflow(
    workflow_id: PathText,
    connection: ConnectionDep,
    app_state: StateDep,
    _: Reader,
) -> WorkflowPublic:
    """One workflow with every task."""
    # PostgreSQL text cannot hold NUL, so no stored id contains one.
    state = (
        None if "\x00" in workflow_id else workflow_rows.get(connection, workflow_id=workflow_id)
    )
    if state is None:
        raise Problem(404, "Workflow not found", f"no workflow with id {workflow_id!r}")
    return WorkflowPublic.of(state, app_state.settings.trace_url_template)


class PlanAttemptPublic(BaseModel):
    """One plan the LLM planner asked its model for, and what came of it."""

    attempt: int = Field(description="1 for the first plan asked for.")
    model: str
    prompt: list[dict[str, Any]] = Field(description="The chat messages sent, as sent.")
    answer: str | None = Field(description="The model's answer; null when it gave none.")
    outcome: str = Field(
        description="accepted, refused (the plan failed its checks) or error (no usable answer)."
    )
    problems: list[str] = Field(description="Why the plan was refused, or the error.")
    input_tokens: int
    output_tokens: int
    cost_usd: float
    at: datetime


@router.get(
    "/workflows/{workflow_id}/plan-attempts",
    response_model=list[PlanAttemptPublic],
    responses=problems(401, 404, 429, 503, why={404: "No such workflow."}),
)
def plan_attempts(
    workflow_id: PathText,
    connection: ConnectionDep,
    _: Reader,
) -> list[PlanAttemptPublic]:
    """Every plan the LLM planner asked for this workflow, oldest first, with the prompt
    and the answer (empty for a workflow its playbook planned)."""
    state = (
        None if "\x00" in workflow_id else workflow_rows.get(connection, workflow_id=workflow_id)
    )
    if state is None:
        raise Problem(404, "Workflow not found", f"no workflow with id {workflow_id!r}")
    return [
        PlanAttemptPublic(**row)
        for row in plan_store.attempts_of(connection, workflow_id=workflow_id)
    ]


TimeParam = Annotated[
    str | None,
    Query(
        max_length=50,
        pattern=NO_NUL,
        description="A duration back from now (90s, 30m, 2h, 7d, 1w) or an ISO time.",
    ),
]


@router.get(
    "/workflows",
    response_model=WorkflowPagePublic,
    responses=problems(
        400,
        401,
        422,
        429,
        503,
        why={
            400: "A cursor that is not a `next_cursor` or `previous_cursor` of a page.",
            422: "A parameter that breaks the schema, or a time that is neither a "
            "duration nor an ISO time.",
        },
    ),
)
def search_workflows(
    connection: ConnectionDep,
    _: Reader,
    status: Annotated[
        list[WorkflowStatus] | None,
        Query(description="Only these statuses (repeat the parameter for several)."),
    ] = None,
    type: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    goal_id: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="Exactly this id.")
    ] = None,
    id_prefix: Annotated[
        str | None,
        Query(max_length=200, pattern=NO_NUL, description="Ids (goal ids) starting with this."),
    ] = None,
    triggered_by: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=NO_NUL,
            description="Started by an event of this type or from this source (the goal "
            "input's `_trigger`).",
        ),
    ] = None,
    text: Annotated[
        str | None,
        Query(
            max_length=500,
            pattern=NO_NUL,
            description='Words of the goal input (web search syntax: `"two words"`, `or`, `-not`).',
        ),
    ] = None,
    accepted_since: TimeParam = None,
    accepted_until: TimeParam = None,
    started_since: TimeParam = None,
    started_until: TimeParam = None,
    finished_since: TimeParam = None,
    finished_until: TimeParam = None,
    sort: Annotated[
        Sort, Query(description="The time to order by; workflows without it come last.")
    ] = "accepted",
    order: Annotated[Order, Query()] = "desc",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            max_length=500,
            description="The `next_cursor` or `previous_cursor` of a page with the same "
            "filters and sort.",
        ),
    ] = None,
    counts: Annotated[
        bool, Query(description="Also count the workflows of each status (see `counts`).")
    ] = False,
) -> WorkflowPagePublic:
    """Workflows matching every filter given, newest first unless `sort` and `order` say
    otherwise, a page at a time (keyset cursors: a deep page costs what the first does)."""
    now = utcnow()
    try:
        filters = WorkflowFilter(
            statuses=tuple(s.value for s in status or ()),
            goal_type=type,
            goal_id=goal_id,
            id_prefix=id_prefix,
            triggered_by=triggered_by,
            text=text,
            accepted=_range(accepted_since, accepted_until, now, "accepted"),
            started=_range(started_since, started_until, now, "started"),
            finished=_range(finished_since, finished_until, now, "finished"),
        )
    except FilterError as exc:
        raise Problem(422, "Invalid time", str(exc)) from None
    try:
        page = workflow_search.search(
            connection, filters=filters, sort=sort, order=order, limit=limit, cursor=cursor
        )
    except ValueError:
        raise Problem(
            400, "Invalid cursor", "pass back the next_cursor or previous_cursor of a page"
        ) from None
    found = workflow_search.count_by_status(connection, filters=filters) if counts else None
    return WorkflowPagePublic.of(page, found)


def list_workflows(
    connection: Connection,
    principal: Principal,
    *,
    status: WorkflowStatus | None = None,
    type: str | None = None,
    goal_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> WorkflowPagePublic:
    """Workflows newest first, filtered by one status, goal type or goal id (what the
    MCP tool `list_workflows` offers)."""
    return search_workflows(
        connection,
        principal,
        status=[status] if status is not None else None,
        type=type,
        goal_id=goal_id,
        limit=limit,
        cursor=cursor,
    )


def _range(since: str | None, until: str | None, now: datetime, name: str) -> TimeRange:
    """A time range from its two parameters (durations back from ``now`` or ISO times)."""
    return TimeRange(
        since=parse_time(since, now=now, name=f"{name}_since") if since else None,
        until=parse_time(until, now=now, name=f"{name}_until") if until else None,
    )


@router.post(
    "/workflows/{workflow_id}/cancel",
    status_code=202,
    response_model=WorkflowPublic,
    responses=problems(
        400,
        401,
        403,
        404,
        409,
        422,
        429,
        503,
        why={
            400: "A body that cannot be read as JSON.",
            404: "No such workflow.",
            409: "The workflow has finished already; `detail` says how: `completed`, "
            "`failed` or `cancelled` (so cancelling twice answers 409 naming `cancelled`).",
            422: "A body that breaks the schema, or a reason that cannot be stored (text "
            "that is not valid Unicode).",
        },
    ),
)
def cancel_workflow(
    workflow_id: PathText,
    body: WorkflowCancel,
    app_state: StateDep,
    principal: Canceller,
) -> WorkflowPublic:
    """Cancel an accepted, planning or running workflow: its unfinished tasks are
    cancelled, its open escalations closed, `workflow.cancelled` is published, and results
    that arrive later are ignored. Answers with the workflow as it is now (`cancelled`);
    audited with the caller's name and the reason."""
    if "\x00" in workflow_id:
        # PostgreSQL text cannot hold NUL, so no stored id contains one.
        raise Problem(404, "Workflow not found", f"no workflow with id {workflow_id!r}")
    problem = value_problem(body.reason)
    if problem is not None:
        raise Problem(422, "Invalid reason", f"the reason cannot be stored: {problem}")
    cancelled = operations.cancel(app_state, principal, workflow_id=workflow_id, reason=body.reason)
    return WorkflowPublic.of(cancelled, app_state.settings.trace_url_template)
