"""The MCP server (the SDK's ``MCPServer``) with Waypost's tools and resources, for
either transport: ``http.py`` finds each call's caller in its request, ``stdio.py``
knows it from the start."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from review_ui.deps import AppState
from review_ui.mcp_server import dead_letter_tools, escalation_tools, resources, workflow_tools
from review_ui.mcp_server.calls import Calls, Identify

INSTRUCTIONS = """\
Waypost turns goals into workflows of agent tasks; a task an agent is unsure of waits
for a person as an escalation. Read waypost://playbooks for the goal types and their
input schemas, submit_goal to start a workflow, get_workflow to follow it. To decide an
escalation, read it with get_escalation and pass its version and digest to
decide_escalation. Every call runs with your API token's role and is audited."""


def build_server(state: AppState, identify: Identify) -> MCPServer:
    """A server over the app's state; ``identify`` finds each call's caller."""
    server: MCPServer = MCPServer(
        "waypost", title="Waypost", version="0.1.0", instructions=INSTRUCTIONS
    )
    calls = Calls(state, identify)
    workflow_tools.register(server, calls)
    escalation_tools.register(server, calls)
    dead_letter_tools.register(server, calls)
    resources.register(server, calls)
    return server
