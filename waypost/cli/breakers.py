"""`waypost breakers ls`: every capability's circuit breaker, through the HTTP API."""

from __future__ import annotations

import json
from typing import Any

import click

from waypost.cli.connect import client_for


@click.group()
def breakers() -> None:
    """Inspect the circuit breakers of capabilities."""


@breakers.command(name="ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--url", metavar="URL", help="HTTP app URL (default: the running stack).")
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


def _line(item: dict[str, Any]) -> str:
    state = item["state"]
    colour = {"closed": "green", "open": "red", "half_open": "yellow"}.get(state)
    text = f"{item['capability']:28} {click.style(f'{state:9}', fg=colour)} "
    text += f"{item['failures']:3d} failure(s)"
    if state == "open" and item.get("open_until"):
        text += f"  until {item['open_until'][:19]}"
    if state == "half_open" and item.get("probe_task_id"):
        text += f"  probe {item['probe_task_id']}"
    if item.get("last_error") and state != "closed":
        last = " ".join(str(item["last_error"]).split())
        text += f"  last: {last[:80]}"
    return text
