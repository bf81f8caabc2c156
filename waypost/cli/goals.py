"""`waypost goal submit`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from waypost.cli.connect import client_for


def _read_input(value: str) -> dict[str, Any]:
    """JSON text, or @path to a JSON file."""
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            value = path.read_text()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise click.BadParameter("the goal input must be a JSON object")
    return data


@click.group()
def goal() -> None:
    """Submit goals."""


@goal.command()
@click.argument("goal_type", metavar="TYPE")
@click.option(
    "--input",
    "goal_input",
    required=True,
    metavar="JSON|@FILE",
    help="The goal input: a JSON object, or @path/to/file.json.",
)
@click.option(
    "--id",
    "goal_id",
    metavar="ID",
    help="Goal id (Idempotency-Key): the same id twice makes one workflow.",
)
@click.option(
    "--wait",
    is_flag=True,
    help="Show progress and print the workflow once it finished (exit 0 completed, 1 "
    "failed) or waits for a reviewer (exit 3).",
)
@click.option("--timeout", default=120.0, show_default=True, help="Seconds --wait waits.")
@click.option("--json", "as_json", is_flag=True, help="Print the workflow as JSON.")
@click.option("--url", metavar="URL", help="HTTP app URL (default: the running stack).")
def submit(
    goal_type: str,
    goal_input: str,
    goal_id: str | None,
    wait: bool,
    timeout: float,
    as_json: bool,
    url: str | None,
) -> None:
    """Submit a goal of TYPE, e.g. `waypost goal submit support.ticket --input @t.json`."""
    from waypost.cli.render import progress_line, workflow_text
    from waypost.stack.demo import settled

    data = _read_input(goal_input)
    client = client_for(url)
    try:
        workflow_id = client.submit_goal(goal_type, data, goal_id)
        if not wait:
            click.echo(workflow_id)
            return
        click.echo(f"submitted {workflow_id}", err=True)
        workflow = client.wait(
            workflow_id,
            timeout_s=timeout,
            on_change=lambda w: click.echo("  " + progress_line(w), err=True),
            until=settled,
        )
        base_url = client.base_url
    finally:
        client.close()
    click.echo(json.dumps(workflow, indent=2) if as_json else workflow_text(workflow))
    if workflow["status"] == "completed":
        return
    if workflow["status"] == "failed":
        sys.exit(1)
    click.echo(f"waiting for a reviewer: {base_url}/inbox", err=True)
    sys.exit(3)
