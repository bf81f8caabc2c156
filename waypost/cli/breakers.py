"""`waypost breakers ls|open|close`: every capability's circuit breaker, and opening or
closing one by hand (admins), through the HTTP API."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click

from waypost.cli.connect import client_for
from waypost.durations import parse_duration

_URL = click.option("--url", metavar="URL", help="HTTP app URL (default: the running stack).")
_REASON = click.option(
    "--reason", required=True, help="Why (kept in the audit log with your name)."
)


@click.group()
def breakers() -> None:
    """Inspect the circuit breakers of capabilities; open or close one by hand."""


@breakers.command(name="ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_URL
def list_(as_json: bool, url: str | None) -> None:
    """List every capability's circuit: closed, open (until when) or half-open (the
    probe), with its recent failures."""
    client = client_for(url)
    try:
        found = client.call("GET", "/api/v1/breakers")
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for item in found["items"]:
        click.echo(_line(item))
    if not found["items"]:
        click.echo("no capabilities")


def _duration(_: click.Context, __: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if seconds <= 0:
        raise click.BadParameter("must be longer than 0")
    return seconds


@breakers.command(name="open")
@click.argument("capability")
@click.option(
    "--for",
    "for_s",
    metavar="DURATION",
    callback=_duration,
    help="How long (10m, 2h, 1d); then one probe task goes through. Default: until "
    "`waypost breakers close`.",
)
@_REASON
@_URL
def open_(capability: str, for_s: float | None, reason: str, url: str | None) -> None:
    """Open CAPABILITY's circuit by hand: its tasks go to their step's fallback or wait,
    whatever happens, e.g. `waypost breakers open triage --for 10m --reason "vendor
    outage"`."""
    body: dict[str, Any] = {"reason": reason}
    if for_s is not None:
        body["for_s"] = for_s
    _change(capability, "open", body, url)


@breakers.command(name="close")
@click.argument("capability")
@_REASON
@_URL
def close(capability: str, reason: str, url: str | None) -> None:
    """Close CAPABILITY's circuit by hand: it gets work again at once and the tasks
    waiting for it are due now."""
    _change(capability, "close", {"reason": reason}, url)


def _change(capability: str, what: str, body: dict[str, Any], url: str | None) -> None:
    client = client_for(url)
    try:
        item = client.call(
            "POST", f"/api/v1/breakers/{quote(capability, safe='')}/{what}", json=body
        )
    finally:
        client.close()
    click.echo(_line(item))


def _line(item: dict[str, Any]) -> str:
    state = item["state"]
    colour = {"closed": "green", "open": "red", "half_open": "yellow"}.get(state)
    text = f"{item['capability']:28} {click.style(f'{state:9}', fg=colour)} "
    text += f"{item['failures']:3d} failure(s)"
    if item.get("opened_by"):
        text += f"  by hand ({item['opened_by']}: {item.get('open_reason') or 'no reason'})"
    if state == "open":
        until = item.get("open_until")
        text += f"  until {until[:19]}" if until else "  until closed by hand"
    if state == "half_open" and item.get("probe_task_id"):
        text += f"  probe {item['probe_task_id']}"
    if item.get("last_error") and state != "closed":
        last = " ".join(str(item["last_error"]).split())
        text += f"  last: {last[:80]}"
    return text
