"""`waypost agents ls`: the agent registry (which workers run, how alive, how busy),
through the HTTP API."""

from __future__ import annotations

import json
from typing import Any

import click

from waypost.cli.connect import client_for

_STATUS_COLOURS = {"up": "green", "stale": "red", "stopped": None}


@click.group()
def agents() -> None:
    """The agent registry: every worker process and capability that announced itself."""


@agents.command(name="ls")
@click.option("--capability", metavar="NAME", help="Only workers of this capability.")
@click.option(
    "--all",
    "include_stopped",
    is_flag=True,
    help="Also workers that stopped cleanly (kept for a day).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--url", metavar="URL", help="HTTP app URL (default: the running stack).")
def list_(capability: str | None, include_stopped: bool, as_json: bool, url: str | None) -> None:
    """List agent workers: status, age of the last heartbeat, results and throughput.

    A worker is stale when its heartbeat is more than three intervals old: it was
    killed, hangs, or cannot reach the database.
    """
    params: dict[str, Any] = {"include_stopped": include_stopped}
    if capability:
        params["capability"] = capability
    client = client_for(url)
    try:
        page = client.call("GET", "/api/v1/agents", params=params)
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    items = page["items"]
    if not items:
        click.echo("no agent workers" + ("" if include_stopped else " running (--all for stopped)"))
        return
    click.echo(table(items))


def table(items: list[dict[str, Any]]) -> str:
    """The workers as a text table, one line each."""
    header = (
        "CAPABILITY",
        "VERSION",
        "INSTANCE",
        "STATUS",
        "HEARTBEAT",
        "CONC",
        "DONE",
        "FAILED",
        "TASKS/MIN",
        "AVG/MIN",
    )
    rows = [
        (
            item["capability"],
            item["version"],
            item["instance"],
            item["status"],
            age(item["heartbeat_age_s"]),
            str(item["concurrency"]),
            str(item["tasks_completed"]),
            str(item["tasks_failed"]),
            f"{item['tasks_per_min']:.1f}",
            f"{item['tasks_per_min_avg']:.1f}",
        )
        for item in items
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        if row is not header:
            cells[3] = click.style(cells[3], fg=_STATUS_COLOURS.get(row[3]))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def age(seconds: float) -> str:
    """How long ago, roughly: 3s ago, 4m ago, 2h ago, 1d ago."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"
