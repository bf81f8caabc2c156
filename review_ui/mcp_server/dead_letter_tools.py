"""Tools on dead letters: list_dead_letters, get_dead_letter (analyst or admin role).

They run the JSON API's route functions (``review_ui/api/dead_letters.py``); replaying,
resolving and discarding stay in the console, the CLI and the JSON API.
"""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from review_ui.api import dead_letters as dead_letters_api
from review_ui.api.dead_letter_models import ID_BOUND, DeadLetterPagePublic, DeadLetterPublic
from review_ui.auth.roles import DEAD_LETTERS
from review_ui.mcp_server.calls import Calls
from review_ui.mcp_server.workflow_tools import READ_ONLY
from review_ui.openapi import NO_NUL

DeadLetterId = Annotated[int, Field(ge=1, lt=ID_BOUND)]
Status = Literal["pending", "replayed", "resolved", "discarded", "any"]
Filter = Annotated[str | None, Field(max_length=300, pattern=NO_NUL)]
Name = Annotated[str | None, Field(max_length=200, pattern=NO_NUL)]
Key = Annotated[str | None, Field(max_length=1000, pattern=NO_NUL, description="Record key.")]
Reason = Annotated[str | None, Field(max_length=50, pattern=NO_NUL)]
When = Annotated[
    str | None,
    Field(
        max_length=50,
        pattern=NO_NUL,
        description="A duration back from now (90s, 30m, 2h, 7d, 1w) or an ISO time.",
    ),
]
Words = Annotated[str | None, Field(max_length=500, pattern=NO_NUL, description="Words to find.")]
Page = Annotated[int, Field(ge=1, le=100000)]
PageSize = Annotated[int, Field(ge=1, le=500)]


def register(server: MCPServer, calls: Calls) -> None:
    """Add the dead-letter tools to ``server``."""
    state = calls.state

    @server.tool(annotations=READ_ONLY)
    def list_dead_letters(
        ctx: Context,
        status: Status = "pending",
        topic: Filter = None,
        error: Filter = None,
        capability: Name = None,
        workflow: Name = None,
        key: Key = None,
        type: Name = None,
        reason: Reason = None,
        since: When = None,
        until: When = None,
        text: Words = None,
        facets: bool = False,
        page: Page = 1,
        page_size: PageSize = 50,
    ) -> DeadLetterPagePublic:
        """Dead letters matching the filters, newest first (default: pending); with
        facets, also how many match per facet value."""
        arguments = {
            "status": status,
            "topic": topic,
            "error": error,
            "capability": capability,
            "workflow": workflow,
            "key": key,
            "type": type,
            "reason": reason,
            "since": since,
            "until": until,
            "text": text,
            "facets": facets,
            "page": page,
            "page_size": page_size,
        }
        with (
            calls.call(ctx, "list_dead_letters", DEAD_LETTERS, arguments) as who,
            state.engine.begin() as connection,
        ):
            return dead_letters_api.list_dead_letters(
                connection,
                state,
                who,
                status=status,
                topic=topic,
                error=error,
                capability=capability,
                workflow=workflow,
                key=key,
                type=type,
                reason=reason,
                since=since,
                until=until,
                text=text,
                facets=facets,
                page=page,
                page_size=page_size,
            )

    @server.tool(annotations=READ_ONLY)
    def get_dead_letter(dead_letter_id: DeadLetterId, ctx: Context) -> DeadLetterPublic:
        """One dead letter: its record byte for byte, why it failed, and its replays."""
        arguments = {"dead_letter_id": dead_letter_id}
        with (
            calls.call(ctx, "get_dead_letter", DEAD_LETTERS, arguments) as who,
            state.engine.begin() as connection,
        ):
            return dead_letters_api.get_dead_letter(dead_letter_id, connection, who)
