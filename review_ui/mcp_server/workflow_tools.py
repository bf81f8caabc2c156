"""Tools on goals and workflows: submit_goal, get_workflow, list_workflows.

Each runs the JSON API's own route function (``review_ui/api/goals.py``,
``review_ui/api/workflows.py``) as the caller, so a goal submitted here is checked,
stored and published exactly as one posted to ``/api/v1/goals``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Response
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field

from orchestrator.workflow.state import WorkflowStatus
from review_ui.api import goals as goals_api
from review_ui.api import workflows as workflows_api
from review_ui.api.models import (
    GOAL_TYPE,
    GoalAcceptedPublic,
    GoalCreate,
    WorkflowPagePublic,
    WorkflowPublic,
)
from review_ui.auth.roles import READ, SUBMIT_GOALS
from review_ui.mcp_server.calls import Calls
from review_ui.openapi import NO_NUL

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)

GoalType = Annotated[
    str, Field(pattern=GOAL_TYPE, description="A goal type: one of the waypost://playbooks.")
]
GoalInput = Annotated[
    dict[str, Any], Field(description="The goal's input; must pass its playbook's input_schema.")
]
IdempotencyKey = Annotated[
    str | None,
    Field(
        description="The goal id (the API's Idempotency-Key): submitting it again returns "
        "the same workflow. 1-200 letters, digits, '.', '_', ':' or '-'."
    ),
]
WorkflowId = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
StatusFilter = Annotated[WorkflowStatus | None, Field(description="Only workflows in this status.")]
TypeFilter = Annotated[
    str | None, Field(max_length=100, pattern=NO_NUL, description="Only this goal type.")
]
GoalIdFilter = Annotated[
    str | None, Field(max_length=200, pattern=NO_NUL, description="Only this goal id.")
]
Limit = Annotated[int, Field(ge=1, le=200, description="At most this many workflows.")]
Cursor = Annotated[
    str | None,
    Field(max_length=500, description="The next_cursor of the previous page."),
]


def register(server: MCPServer, calls: Calls) -> None:
    """Add the goal and workflow tools to ``server``."""
    state = calls.state

    # Idempotent only with an idempotency_key, so not marked so.
    @server.tool(annotations=ToolAnnotations(read_only_hint=False, open_world_hint=False))
    def submit_goal(
        type: GoalType,
        input: GoalInput,
        ctx: Context,
        idempotency_key: IdempotencyKey = None,
    ) -> GoalAcceptedPublic:
        """Submit a goal; it is planned into a workflow asynchronously (admin role).

        Answers with the workflow id; follow it with get_workflow or the resource
        waypost://workflows/{id}."""
        arguments = {"type": type, "input": input, "idempotency_key": idempotency_key}
        with calls.call(ctx, "submit_goal", SUBMIT_GOALS, arguments) as principal:
            return goals_api.submit_goal(
                GoalCreate(type=type, input=input),
                state,
                Response(),
                principal,
                idempotency_key=idempotency_key,
                traceparent=None,
            )

    @server.tool(annotations=READ_ONLY)
    def get_workflow(workflow_id: WorkflowId, ctx: Context) -> WorkflowPublic:
        """One workflow with every task: status, inputs, outputs, attempts and errors."""
        arguments = {"workflow_id": workflow_id}
        with (
            calls.call(ctx, "get_workflow", READ, arguments, workflow_id=workflow_id) as who,
            state.engine.begin() as connection,
        ):
            return workflows_api.get_workflow(workflow_id, connection, state, who)

    @server.tool(annotations=READ_ONLY)
    def list_workflows(
        ctx: Context,
        status: StatusFilter = None,
        type: TypeFilter = None,
        goal_id: GoalIdFilter = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> WorkflowPagePublic:
        """Workflows newest first, filtered by status, goal type or goal id; pass
        next_cursor back as cursor for the next page."""
        arguments = {
            "status": status,
            "type": type,
            "goal_id": goal_id,
            "limit": limit,
            "cursor": cursor,
        }
        with (
            calls.call(ctx, "list_workflows", READ, arguments) as who,
            state.engine.begin() as connection,
        ):
            return workflows_api.list_workflows(
                connection,
                who,
                status=status,
                type=type,
                goal_id=goal_id,
                limit=limit,
                cursor=cursor,
            )
