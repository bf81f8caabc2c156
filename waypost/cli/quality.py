"""`waypost quality ls|show`: decision quality per capability and agent version, through
the HTTP API (what each number means: docs/reviewing.md, decision quality)."""

from __future__ import annotations

import json
from typing import Any

import click

from waypost.cli.connect import client_for

_URL = click.option("--url", metavar="URL", help="HTTP app URL (default: the running stack).")
_DAYS = click.option(
    "--days",
    type=click.IntRange(1, 90),
    default=14,
    show_default=True,
    help="UTC days to look at, today included.",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
_COLUMNS = (
    ("ESCALATED", "escalation_rate"),
    ("APPROVED", "approval_rate"),
    ("EDITED", "edit_rate"),
    ("REJECTED", "rejection_rate"),
    ("RETRIED", "retry_rate"),
    ("AGREE", "agreement"),
)


@click.group()
def quality() -> None:
    """Show how reviewers judge each capability and agent version."""


@quality.command(name="ls")
@click.option("--capability", help="Only this capability.")
@click.option("--version", "version_", metavar="VERSION", help="Only this agent version.")
@_DAYS
@_JSON
@_URL
def list_(
    capability: str | None, version_: str | None, days: int, as_json: bool, url: str | None
) -> None:
    """A table of every capability and agent version with results in the last days: how
    many results, the share that escalated, of the decided escalations the share
    approved, edited, rejected and retried, the mean edit distance of edits, reviewer
    agreement, and the rates the drift check found past their threshold."""
    params = {"capability": capability, "version": version_, "days": days}
    found = _call("/api/v1/decision-quality", params, url)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found["items"]:
        click.echo(f"no agent results in the last {days} day(s)")
        return
    click.echo(_header())
    for item in found["items"]:
        click.echo(_row(item))


@quality.command()
@click.argument("capability")
@click.argument("version")
@_DAYS
@click.option(
    "--limit", type=click.IntRange(1, 200), default=20, show_default=True, help="Escalations."
)
@_JSON
@_URL
def show(
    capability: str, version: str, days: int, limit: int, as_json: bool, url: str | None
) -> None:
    """A version's recent escalations, newest first: the reviewer's verdict and reason
    next to the agent's reasoning."""
    params = {"capability": capability, "version": version, "days": days, "limit": limit}
    found = _call("/api/v1/decision-quality/decisions", params, url)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found["items"]:
        click.echo(f"no escalations of {capability} {version} in the last {days} day(s)")
    for item in found["items"]:
        click.echo(_judged(item))


def _call(path: str, params: dict[str, Any], url: str | None) -> Any:
    client = client_for(url)
    try:
        return client.call("GET", path, params={k: v for k, v in params.items() if v is not None})
    finally:
        client.close()


def _header() -> str:
    names = " ".join(f"{name:>9}" for name, _ in _COLUMNS)
    return f"{'CAPABILITY':24} {'VERSION':12} {'RESULTS':>7} {names} {'EDIT-DIST':>9}  DRIFT"


def _row(item: dict[str, Any]) -> str:
    rates = " ".join(f"{_percent(item[key]):>9}" for _, key in _COLUMNS)
    distance = "—" if item["edit_distance"] is None else f"{item['edit_distance']:.2f}"
    drift = ", ".join(
        f"{d['verdict']} {_percent(d['rate'])} > {_percent(d['threshold'])}" for d in item["drifts"]
    )
    text = f"{item['capability']:24} {item['version']:12} {item['results']:>7} {rates}"
    text += f" {distance:>9}  "
    return text + (click.style(drift, fg="red") if drift else "-")


def _judged(item: dict[str, Any]) -> str:
    verdict = item["verdict"] or f"({item['status']})"
    colour = {"approved": "green", "rejected": "red", "edited": "yellow"}.get(verdict)
    lines = [
        f"{item['opened_at'][:19]}  {click.style(f'{verdict:9}', fg=colour)} "
        f"{item['step']}  {item['escalation_id']}"
    ]
    if item["verdict"]:
        reason = f": {item['reason']}" if item.get("reason") else ""
        lines.append(f"    reviewer {item['reviewer']}{reason}")
    if item.get("edit_distance") is not None:
        lines.append(f"    edit distance {item['edit_distance']:.2f}")
    lines += [f"    agent: {note}" for note in item["reasoning"]]
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"
