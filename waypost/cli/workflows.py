"""`waypost workflow show|ls|cancel|retry|resume`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import click

from waypost.cli.client import ApiError
from waypost.cli.connect import client_for

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def workflow() -> None:
    """Inspect, cancel, retry and resume workflows."""


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
    "statuses",
    multiple=True,
    type=click.Choice(["accepted", "planning", "running", "completed", "failed", "cancelled"]),
    help="Only this status (repeat for several).",
)
@click.option("--type", "goal_type", metavar="TYPE", help="Only goals of this type.")
@click.option("--id", "id_prefix", metavar="PREFIX", help="Ids (goal ids) starting with this.")
@click.option("--triggered-by", metavar="TEXT", help="Started by an event of this type or source.")
@click.option("--text", metavar="WORDS", help="Words of the goal input.")
@click.option(
    "--since",
    "accepted_since",
    metavar="WHEN",
    help="Accepted since: a duration back from now (30m, 2h, 7d) or an ISO time.",
)
@click.option("--until", "accepted_until", metavar="WHEN", help="Accepted before (as --since).")
@click.option("--started-since", metavar="WHEN", help="Started since (as --since).")
@click.option("--started-until", metavar="WHEN", help="Started before (as --since).")
@click.option("--finished-since", metavar="WHEN", help="Finished since (as --since).")
@click.option("--finished-until", metavar="WHEN", help="Finished before (as --since).")
@click.option(
    "--sort",
    type=click.Choice(["accepted", "started", "finished"]),
    default="accepted",
    show_default=True,
    help="The time to order by (workflows without it come last).",
)
@click.option("--oldest-first", is_flag=True, help="Oldest first instead of newest first.")
@click.option("--cursor", metavar="CURSOR", help="The next page: the cursor a page printed.")
@click.option("--counts", is_flag=True, help="Also count the workflows of each status.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 200))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--url", metavar="URL", help="HTTP app URL (default: the running stack).")
def list_(
    statuses: tuple[str, ...],
    goal_type: str | None,
    id_prefix: str | None,
    oldest_first: bool,
    counts: bool,
    limit: int,
    as_json: bool,
    url: str | None,
    **filters: str | None,
) -> None:
    """List workflows, newest first, filtered by status, type, id, trigger, input words
    and times (docs/operating.md, "Workflows")."""
    from waypost.cli.render import status as coloured

    client = client_for(url)
    try:
        page = client.workflows(
            status=list(statuses) or None,
            type=goal_type,
            id_prefix=id_prefix,
            order="asc" if oldest_first else "desc",
            counts="true" if counts else None,
            limit=limit,
            **filters,
        )
    finally:
        client.close()
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    for item in page["items"]:
        trigger = item.get("triggered_by")
        click.echo(
            f"{item['id']}  {item['type']:20} {coloured(item['status']):20} {item['accepted_at']}"
            + (f"  by {trigger['event_type']}" if trigger else "")
            + (f"  {item['reason']}" if item.get("reason") else "")
        )
    if not page["items"]:
        click.echo("no workflows")
    if page.get("counts"):
        click.echo(
            "  ".join(
                f"{c['status']} {c['count']}{'+' if c['capped'] else ''}" for c in page["counts"]
            )
        )
    if page.get("next_cursor"):
        click.echo(f"more: --cursor {page['next_cursor']}")


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
    """Cancel an accepted, planning or running workflow: its unfinished tasks are
    cancelled, its open escalations closed, and results that arrive later ignored.
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


# What a refusal of `workflow retry` or `workflow resume` means for the person who typed
# it; other refusals say it themselves (the problem's detail).
_OPERATOR_NEEDED = (
    "{what} a workflow needs a token of a role that may operate workflows (admin); create "
    "one with `waypost token create --role admin`"
)
_INPUT_HELP = (
    "Run the step on this input instead of its own: a JSON object, or @FILE to read one; "
    "checked against the input schema its capability's workers announced."
)


def _rerun_options(command: F) -> F:
    """--reason, --input, --json and --url: what `retry` and `resume` both take."""
    for option in reversed(
        (
            click.option(
                "--reason",
                required=True,
                metavar="TEXT",
                help="Why (1-500 characters); kept in the audit trail.",
            ),
            click.option("--input", "input_json", metavar="JSON", help=_INPUT_HELP),
            click.option("--json", "as_json", is_flag=True, help="Print the workflow as JSON."),
            click.option("--url", metavar="URL", help="HTTP app URL (default: the running stack)."),
        )
    ):
        command = option(command)
    return command


@workflow.command()
@click.argument("workflow_id", metavar="ID")
@click.argument("step", metavar="STEP")
@_rerun_options
def retry(
    workflow_id: str,
    step: str,
    reason: str,
    input_json: str | None,
    as_json: bool,
    url: str | None,
) -> None:
    """Run a failed STEP of a running or failed workflow again: a new attempt with a
    whole retry budget, on its last input (or --input). A failed workflow runs again."""
    body = _body(reason, input_json)
    path = f"/api/v1/workflows/{quote(workflow_id, safe='')}/steps/{quote(step, safe='')}/retry"
    _operate(path, body, "retrying a step of", as_json, url)


@workflow.command()
@click.argument("workflow_id", metavar="ID")
@click.option("--from", "step", required=True, metavar="STEP", help="The step to resume from.")
@_rerun_options
def resume(
    workflow_id: str,
    step: str,
    reason: str,
    input_json: str | None,
    as_json: bool,
    url: str | None,
) -> None:
    """Run a failed workflow again from a step: it and every step after it run again, on
    their mapped inputs (the step on --input if given)."""
    body = {"step": step, **_body(reason, input_json)}
    path = f"/api/v1/workflows/{quote(workflow_id, safe='')}/resume"
    _operate(path, body, "resuming", as_json, url)


def _body(reason: str, input_json: str | None) -> dict[str, Any]:
    """The request body: the reason, and the input if given (checked to be an object)."""
    if not 1 <= len(reason) <= 500:
        raise click.BadParameter("give 1-500 characters", param_hint="--reason")
    body: dict[str, Any] = {"reason": reason}
    if input_json is None:
        return body
    text = input_json
    if input_json.startswith("@"):
        try:
            text = Path(input_json[1:]).read_text()
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {input_json[1:]}: {exc}", param_hint="--input"
            ) from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--input") from None
    if not isinstance(value, dict):
        raise click.BadParameter("give a JSON object ({...})", param_hint="--input")
    body["input"] = value
    return body


def _operate(path: str, body: dict[str, Any], what: str, as_json: bool, url: str | None) -> None:
    """POST an operation; print the workflow as it is now, or why it was refused."""
    from waypost.cli.render import workflow_text

    client = client_for(url)
    try:
        found = client.call("POST", path, json=body)
    except ApiError as exc:
        if exc.status == 403:
            message = _OPERATOR_NEEDED.format(what=what.capitalize())
        elif exc.status in (404, 409, 422):
            message = exc.detail
        else:
            raise
        raise ApiError(message, exc.status) from None
    finally:
        client.close()
    click.echo(json.dumps(found, indent=2) if as_json else workflow_text(found))
