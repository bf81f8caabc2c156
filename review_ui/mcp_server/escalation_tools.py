"""Tools on escalations: list_escalations, get_escalation, decide_escalation.

They run the JSON API's route functions (``review_ui/api/escalations.py``), so a
decision goes through ``review_ui/review.py`` and ``Reviews.decide`` like one from the
console: bound to the version and digest the caller read (a stale one is refused with
409), exactly one per escalation, audited as ``decide`` by the caller.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field

from review_ui.api import escalations as escalations_api
from review_ui.api.escalations import (
    DecisionAccepted,
    DecisionCreate,
    EscalationPagePublic,
    EscalationPublic,
)
from review_ui.auth.roles import DECIDE, READ
from review_ui.mcp_server.calls import Calls
from review_ui.mcp_server.workflow_tools import READ_ONLY
from review_ui.openapi import NO_NUL

EscalationId = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
Text = Annotated[str | None, Field(max_length=100, pattern=NO_NUL)]
Status = Annotated[
    Literal["pending", "decided", "resolved", "any"],
    Field(description="'any' lists escalations of every status."),
]
Priority = Annotated[int | None, Field(ge=1, le=5)]
Assignee = Annotated[
    str | None, Field(max_length=200, pattern=NO_NUL, description="'' for unassigned ones.")
]
Sla = Annotated[Literal["ok", "warning", "overdue"] | None, Field()]
Sort = Literal["priority", "due", "newest", "oldest"]
Page = Annotated[int, Field(ge=1, le=100000)]
PageSize = Annotated[int, Field(ge=1, le=200)]
Action = Annotated[
    Literal["approve", "edit", "reject", "retry"],
    Field(description="approve the output, edit it, reject it (reason required) or retry"),
]
Version = Annotated[
    int, Field(ge=1, le=2**31 - 1, description="The escalation's version you read.")
]
Digest = Annotated[
    str, Field(pattern=r"^[0-9a-f]{64}$", description="The escalation's digest you read.")
]
Output = Annotated[dict[str, Any] | None, Field(description="The edited output (edit).")]
Reason = Annotated[
    str | None, Field(max_length=4000, pattern=NO_NUL, description="Why (required to reject).")
]


def register(server: MCPServer, calls: Calls) -> None:
    """Add the escalation tools to ``server``."""
    state = calls.state

    @server.tool(annotations=READ_ONLY)
    def list_escalations(
        ctx: Context,
        status: Status = "pending",
        goal_type: Text = None,
        capability: Text = None,
        priority: Priority = None,
        assignee: Assignee = None,
        group: Text = None,
        sla: Sla = None,
        sort: Sort = "priority",
        page: Page = 1,
        page_size: PageSize = 50,
    ) -> EscalationPagePublic:
        """Escalations matching the filters (default: pending, most urgent first)."""
        arguments = {
            "status": status,
            "goal_type": goal_type,
            "capability": capability,
            "priority": priority,
            "assignee": assignee,
            "group": group,
            "sla": sla,
            "sort": sort,
            "page": page,
            "page_size": page_size,
        }
        with (
            calls.call(ctx, "list_escalations", READ, arguments) as who,
            state.engine.begin() as connection,
        ):
            return escalations_api.list_escalations(
                connection,
                who,
                status=status,
                goal_type=goal_type,
                capability=capability,
                priority=priority,
                assignee=assignee,
                group=group,
                sla=sla,
                sort=sort,
                page=page,
                page_size=page_size,
            )

    @server.tool(annotations=READ_ONLY)
    def get_escalation(escalation_id: EscalationId, ctx: Context) -> EscalationPublic:
        """One escalation: the content shown to reviewers, and the version and digest a
        decision must name."""
        arguments = {"escalation_id": escalation_id}
        with (
            calls.call(ctx, "get_escalation", READ, arguments, escalation_id=escalation_id) as who,
            state.engine.begin() as connection,
        ):
            return escalations_api.get_escalation(escalation_id, connection, who)

    @server.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, open_world_hint=False
        )
    )
    def decide_escalation(
        escalation_id: EscalationId,
        action: Action,
        version: Version,
        digest: Digest,
        ctx: Context,
        output: Output = None,
        reason: Reason = None,
    ) -> DecisionAccepted:
        """Decide an escalation (reviewer or admin role) on the version and digest you
        read with get_escalation; exactly one decision per escalation is accepted.

        A stale version or digest, or an escalation decided meanwhile, is refused with
        409: read it again. A reject needs a reason, an edit the edited output (checked
        against the step's output schema), a retry an attempt left (each else 422)."""
        decision = DecisionCreate(
            action=action, version=version, digest=digest, output=output, reason=reason
        )
        with calls.call(
            ctx,
            "decide_escalation",
            DECIDE,
            {"escalation_id": escalation_id, **decision.model_dump()},
            escalation_id=escalation_id,
        ) as principal:
            return escalations_api.decide(escalation_id, decision, state, principal)
