"""GET /api/v1/workflows[/{id}]: workflow status, tasks, outputs and attempts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from orchestrator.store import workflows as workflow_rows
from orchestrator.workflow.state import WorkflowStatus
from review_ui.api.models import WorkflowPagePublic, WorkflowPublic
from review_ui.auth.principal import Principal, api_roles
from review_ui.auth.roles import READ
from review_ui.deps import ConnectionDep, StateDep
from review_ui.openapi import NO_NUL, problems
from review_ui.problems import Problem

router = APIRouter(tags=["workflows"])
Reader = Annotated[Principal, Depends(api_roles(READ))]


@router.get(
    "/workflows/{workflow_id}",
    response_model=WorkflowPublic,
    responses=problems(401, 404, 429, 503, why={404: "No such workflow."}),
)
def get_workflow(
    workflow_id: Annotated[str, Path(json_schema_extra={"pattern": NO_NUL})],
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


@router.get(
    "/workflows",
    response_model=WorkflowPagePublic,
    responses=problems(
        400, 401, 422, 429, 503, why={400: "A cursor that is not a `next_cursor` of a page."}
    ),
)
def list_workflows(
    connection: ConnectionDep,
    _: Reader,
    status: Annotated[WorkflowStatus | None, Query()] = None,
    type: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    goal_id: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=500, description="The `next_cursor` of the previous page."),
    ] = None,
) -> WorkflowPagePublic:
    """Workflows newest first, filtered by status, goal type or goal id."""
    if cursor is not None:
        try:
            workflow_rows.decode_cursor(cursor)
        except ValueError:
            raise Problem(
                400, "Invalid cursor", "pass back the next_cursor of a previous page"
            ) from None
    page = workflow_rows.list_page(
        connection,
        status=status.value if status else None,
        goal_type=type,
        goal_id=goal_id,
        limit=limit,
        cursor=cursor,
    )
    return WorkflowPagePublic.of(page)
