"""`waypost workflow show|ls|cancel`."""

from __future__ import annotations

import json

import click

from waypost.cli.client import ApiError
from waypost.cli.connect import client_for


@click.group()
def workflow() -> None:
    """Inspect and cancel workflows."""


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
@click.option(
    "--status",
    type=click.Choice(["accepted", "planning", "running", "completed", "failed", "cancelled"]),
)
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


# What each refusal of `workflow cancel` means for the person who typed it.
_REFUSED = {
    403: "cancelling a workflow needs a token of a role that may submit goals (admin); "
    "create one with `waypost token create --role admin`",
    404: "no workflow {id!r}; `waypost workflow ls` lists them",
    409: "{detail}",
    422: "the reason must be 1-500 characters of text",
}


@workflow.command()
@click.argument("workflow_id", metavar="ID")
@click.option(
    "--reason",
    required=True,
    metavar="TEXT",
    help="Why (1-500 characters); kept on the workflow and in the audit trail.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the cancelled workflow as JSON.")
@click.option("--url", metavar="URL", help="HTTP app URL (default: the running stack).")
def cancel(workflow_id: str, reason: str, as_json: bool, url: str | None) -> None:
    """Cancel an accepted or running workflow: its unfinished tasks are cancelled, its
    open escalations closed, and results that arrive later ignored.
    Refused for a workflow that completed, failed or was cancelled already."""
    from waypost.cli.render import workflow_text

    if not 1 <= len(reason) <= 500:
        raise click.BadParameter("give 1-500 characters", param_hint="--reason")
    client = client_for(url)
    try:
        found = client.cancel(workflow_id, reason)
    except ApiError as exc:
        message = _REFUSED.get(exc.status or 0)
        if message is None:
            raise
        raise ApiError(message.format(id=workflow_id, detail=exc.detail), exc.status) from None
    finally:
        client.close()
    click.echo(json.dumps(found, indent=2) if as_json else workflow_text(found))
