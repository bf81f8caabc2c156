"""`waypost mcp ...`: Waypost's MCP server for local clients (the HTTP app serves the
same tools at ``/mcp``). Plugged in by the ``waypost.commands`` entry point."""

from __future__ import annotations

import sys

import click


@click.group()
def mcp() -> None:
    """Waypost as an MCP server (docs/mcp.md, "Waypost as an MCP server")."""


@mcp.command()
@click.option(
    "--token",
    envvar="WAYPOST_API_TOKEN",
    help="The API token to act as (`waypost token create --role ROLE`); default: "
    "WAYPOST_API_TOKEN, else the running `waypost up` stack's CLI token.",
)
def serve(token: str | None) -> None:
    """Serve the MCP tools and resources over stdio (stdout is the protocol, logs go to
    stderr). Every call runs with the token's role and is audited with its name."""
    from review_ui.mcp_server.errors import TokenRefused
    from review_ui.mcp_server.stdio import serve as serve_stdio
    from waypost.settings import HttpSettings, load

    try:
        sys.exit(serve_stdio(load(HttpSettings), token))
    except TokenRefused as exc:
        raise click.ClickException(str(exc)) from None
