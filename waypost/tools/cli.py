"""`waypost tools ls [SERVER]`: the configured MCP tool servers, whether each answers,
and the tools it offers."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from waypost.errors import ConfigError


@click.group()
def tools() -> None:
    """MCP tool servers the agents may call (WAYPOST_TOOL_DIRS; docs/mcp.md)."""


@tools.command(name="ls")
@click.argument("server", required=False)
@click.option(
    "--dir",
    "tool_dirs",
    multiple=True,
    metavar="DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Read the tool-server files in DIR (repeatable; default WAYPOST_TOOL_DIRS).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(server: str | None, tool_dirs: tuple[Path, ...], as_json: bool) -> None:
    """List the tool servers (or only SERVER): transport, whether it is reachable, and
    its tools. Each server is connected as an agent worker would, from this process's
    environment; the exit status is 1 if any listed server is unreachable."""
    from waypost.settings import AgentSettings, load
    from waypost.tools.client import ToolClient
    from waypost.tools.config import ToolSet
    from waypost.tools.errors import InvalidToolServers, ToolError

    directories = list(tool_dirs) or load(AgentSettings).tool_dirs
    if not directories:
        raise ConfigError("no tool-server directories: set WAYPOST_TOOL_DIRS or pass --dir")
    try:
        servers = ToolSet(directories).current()
    except InvalidToolServers as exc:
        raise ConfigError(f"WAYPOST_TOOL_DIRS: invalid tool servers:\n{exc}") from None
    names = sorted(servers) if server is None else [server]
    client = ToolClient(lambda: servers, environ=os.environ)
    client.start()
    rows: list[dict[str, Any]] = []
    try:
        for name in names:
            row: dict[str, Any] = {"server": name}
            try:
                spec = client.server(name)
                row["transport"] = spec.transport
                row["tools"] = [
                    {"name": t.name, "description": t.description} for t in client.tools(name)
                ]
                row["reachable"] = True
            except ToolError as exc:
                row.update(reachable=False, error=str(exc))
            rows.append(row)
    finally:
        client.close()
    click.echo(json.dumps(rows, indent=2) if as_json else render(rows))
    if not rows:
        click.echo("no tool servers configured", err=True)
    if any(not row["reachable"] for row in rows):
        sys.exit(1)


def render(rows: list[dict[str, Any]]) -> str:
    """The servers and their tools as indented text."""
    lines: list[str] = []
    for row in rows:
        if not row["reachable"]:
            lines.append(f"{row['server']}  unreachable: {row['error']}")
            continue
        lines.append(f"{row['server']}  {row['transport']}  reachable, {len(row['tools'])} tool(s)")
        for tool in row["tools"]:
            # First line only: a description is the server's text, shown as plain text.
            summary = (tool["description"] or "").strip().splitlines()
            lines.append(f"  {tool['name']}" + (f"  {summary[0]}" if summary else ""))
    return "\n".join(lines)
