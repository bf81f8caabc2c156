"""`waypost audit export|decisions`: the audit log and policy decisions, through the HTTP
API (analysts and admins)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

import click

from waypost import exports
from waypost.cli.client import Client
from waypost.cli.connect import client_for

_URL = click.option("--url", metavar="URL", help="HTTP app URL (default: the running stack).")
_SINCE = click.option(
    "--since",
    metavar="WHEN",
    help="From this time on: a duration back (30m, 2h, 7d) or an ISO time.",
)
_UNTIL = click.option("--until", metavar="WHEN", help="Before this time (same forms as --since).")
_PAGE = 500


@click.group()
def audit() -> None:
    """Read and export the audit log and policy decisions."""


@audit.command()
@click.option(
    "--format",
    "format_",
    type=click.Choice(["csv", "jsonl"]),
    default="csv",
    show_default=True,
    help="CSV with a header, or JSON Lines.",
)
@_SINCE
@_UNTIL
@click.option("--actor", help="Only entries of this actor (a user, or waypost:... for the system).")
@click.option("--action", help="Only entries of this action (decision, cancel, circuit_opened...).")
@click.option("--workflow", "workflow_id", metavar="ID", help="Only entries of this workflow.")
@click.option(
    "--output",
    "-o",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="File (default: stdout).",
)
@_URL
def export(
    format_: str,
    since: str | None,
    until: str | None,
    actor: str | None,
    action: str | None,
    workflow_id: str | None,
    output: TextIO,
    url: str | None,
) -> None:
    """Write every audit log entry of the filter, newest first, e.g. `waypost audit export
    --format jsonl --since 7d --actor ada -o ada.jsonl`."""
    filters = {
        "since": since,
        "until": until,
        "actor": actor,
        "action": action,
        "workflow_id": workflow_id,
    }
    client = client_for(url)
    try:
        rows = _every(client, "/api/v1/audit", filters)
        fmt: exports.Format = "jsonl" if format_ == "jsonl" else "csv"
        for line in exports.lines(rows, format=fmt, columns=exports.AUDIT_COLUMNS):
            output.write(line)
    finally:
        client.close()


@audit.command()
@click.option("--agent", help="Only decisions about this agent.")
@click.option("--action", help="Only decisions about this action.")
@click.option("--outcome", type=click.Choice(["allow", "deny", "require_approval"]))
@_SINCE
@_UNTIL
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON page.")
@_URL
def decisions(
    agent: str | None,
    action: str | None,
    outcome: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
    url: str | None,
) -> None:
    """The newest policy decisions: who wanted to do what, the outcome, the rule that
    decided (policy, version, path, file:line) and why."""
    params = {
        "agent": agent,
        "action": action,
        "outcome": outcome,
        "since": since,
        "until": until,
        "limit": limit,
    }
    client = client_for(url)
    try:
        page = client.call("GET", "/api/v1/policy-decisions", params=_given(params))
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    for item in page["items"]:
        click.echo(_decision_line(item))
    if not page["items"]:
        click.echo("no policy decisions")
    elif page["next_cursor"]:
        click.echo(f"(more: --limit up to 500, or --until {page['items'][-1]['at']})")


def _every(client: Client, path: str, filters: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every item of a keyset-paged list, page after page."""
    params = {**_given(filters), "limit": _PAGE}
    while True:
        page = client.call("GET", path, params=params)
        yield from page["items"]
        if not page["next_cursor"]:
            return
        params["cursor"] = page["next_cursor"]


def _given(params: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}


_OUTCOME_COLOURS = {"allow": "green", "deny": "red", "require_approval": "yellow"}


def _decision_line(item: dict[str, Any]) -> str:
    outcome = item["outcome"]
    text = f"{item['at'][:19]}  {item['agent']:16} {item['action']:24} "
    text += click.style(f"{outcome:16}", fg=_OUTCOME_COLOURS.get(outcome))
    rule = item.get("rule")
    if rule:
        where = f"{rule['file']}:{rule['line']}" if rule.get("line") else rule["file"]
        path = f" {rule['path']}" if rule.get("path") else ""
        text += f" {rule['policy']} v{rule['version']}{path} ({where})"
    else:
        text += " (no policy)"
    return text + f"\n    {item['reason']}"
