"""Resources: the playbooks (``waypost://playbooks``, and one per goal type) and a
workflow by id (``waypost://workflows/{workflow_id}``), as JSON.

The index is a static resource, which the SDK reads without a request context, so it
is neither role-checked nor audited beyond the authentication every request passes:
it is configuration that every role may read (the goal types, their descriptions and
input schemas). The per-type playbook and the workflow are read as their caller, with
the roles of the JSON API, and audited like tool calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from orchestrator.playbooks.model import Playbook
from review_ui.api import workflows as workflows_api
from review_ui.auth.roles import READ
from review_ui.mcp_server.calls import Calls
from review_ui.mcp_server.errors import Refused, ResourceRefused

JSON = "application/json"


def register(server: MCPServer, calls: Calls) -> None:
    """Add the playbook and workflow resources to ``server``."""
    state = calls.state

    @server.resource(
        "waypost://playbooks",
        name="playbooks",
        description="Every goal type: its description, version and input schema.",
        mime_type=JSON,
    )
    def playbooks() -> str:
        return json.dumps([_summary(p) for p in state.playbooks], indent=2)

    @server.resource(
        "waypost://playbooks/{goal_type}",
        name="playbook",
        description="One playbook as loaded: its steps, review rules and output mapping.",
        mime_type=JSON,
    )
    def playbook(goal_type: str, ctx: Context) -> str:
        with _as_resource(), calls.call(ctx, "read:playbook", READ, {"goal_type": goal_type}):
            found = state.playbooks.get(goal_type)
            if found is None:
                known = ", ".join(state.playbooks.types())
                raise Refused(404, "Not Found", f"no playbook for {goal_type!r}; known: {known}")
            return json.dumps({**_summary(found), "document": found.document}, indent=2)

    @server.resource(
        "waypost://workflows/{workflow_id}",
        name="workflow",
        description="One workflow with every task (as the get_workflow tool answers).",
        mime_type=JSON,
    )
    def workflow(workflow_id: str, ctx: Context) -> str:
        arguments = {"workflow_id": workflow_id}
        with (
            _as_resource(),
            calls.call(ctx, "read:workflow", READ, arguments, workflow_id=workflow_id) as who,
            state.engine.begin() as connection,
        ):
            found = workflows_api.get_workflow(workflow_id, connection, state, who)
            return found.model_dump_json(indent=2)


def _summary(playbook: Playbook) -> dict[str, Any]:
    return {
        "type": playbook.type,
        "description": playbook.description,
        "version": playbook.version,
        "digest": playbook.digest,
        "input_schema": playbook.input_schema,
        "resource": f"waypost://playbooks/{playbook.type}",
    }


@contextmanager
def _as_resource() -> Iterator[None]:
    """Turn a tool refusal into the resource error the SDK answers with."""
    try:
        yield
    except Refused as exc:
        if exc.status == 404:
            raise ResourceNotFoundError(str(exc)) from None
        raise ResourceRefused(exc) from None
