"""`waypost workflow show|ls`."""

from __future__ import annotations

import json

import click

from waypost.cli.connect import client_for


@click.group()
def workflow() -> None:
    """Inspect workflows."""


@workflow.command()
@click.argument("workflow_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--url", metavar="URL", help="HTTP app URL (default: the running stack).")
def show(workflow_id: str, as_json: bool, url: str | None) -> None:
    """Show a workflow: status, every step's output, attempts and errors."""
    from waypost.cli.render import workflow_text

    client = client_for(url)
    try:
        found = client.workflow(workflow_id)
    finally:
        client.close()
    click.echo(json.dumps(found, indent=2) if as_json else workflow_text(found))


@workflow.command(name="ls")
@click.option("--status", type=click.Choice(["accepted", "running", "completed", "failed"]))
@click.option("--type", "goal_type", metavar="TYPE", help="Only goals of this type.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 200))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--url", metavar="URL", help="HTTP app URL (default: the running stack).")
def list_(
    status: str | None, goal_type: str | None, limit: int, as_json: bool, url: str | None
) -> None:
    """List recent workflows, newest first."""
    from waypost.cli.render import status as coloured

    client = client_for(url)
    try:
        page = client.workflows(status=status, type=goal_type, limit=limit)
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    for item in page["items"]:
        click.echo(
            f"{item['id']}  {item['type']:20} {coloured(item['status']):20} {item['accepted_at']}"
            + (f"  {item['reason']}" if item.get("reason") else "")
        )
    if not page["items"]:
        click.echo("no workflows")
