"""`waypost dlq ls|show|replay|discard|resolve|stats`: the dead-letter workbench from a
terminal, through the HTTP API (so every action is authorised and audited)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import click

from waypost.cli.client import ApiError, Client
from waypost.cli.connect import client_for

_URL = click.option("--url", metavar="URL", help="HTTP app URL (default: the running stack).")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def dlq() -> None:
    """Search, inspect, replay and discard dead letters."""


@dlq.command(name="ls")
@click.option("--topic", help="Source topic (with or without the namespace).")
@click.option("--error", help="Error class, e.g. ValueError.")
@click.option("--capability", help="Capability of the task topic.")
@click.option("--workflow", help="Workflow id.")
@click.option("--key", help="Record key.")
@click.option("--text", help="Words of the error message or the payload.")
@click.option("--since", help="Dead-lettered since: 30m, 2h, 7d or an ISO time.")
@click.option(
    "--status",
    type=click.Choice(["pending", "replayed", "resolved", "discarded", "any"]),
    default="pending",
    show_default=True,
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@_JSON
@_URL
def list_(limit: int, as_json: bool, url: str | None, **filters: str | None) -> None:
    """List dead letters, newest first."""
    params = {k: v for k, v in filters.items() if v}
    with _client(url) as client:
        page = client.call("GET", "/api/v1/dlq", params={**params, "page_size": limit})
    if as_json:
        click.echo(json.dumps(page, indent=2))
        return
    for item in page["items"]:
        where = item["capability"] or item["source_topic"]
        error = f"{item['error_class'] or '?'}: {item['error_message'] or ''}"
        click.echo(
            f"{item['id']:>6}  {item['dead_lettered_at'][:19]}  {item['status']:9}  "
            f"{where:24}  {_clip(error, 70)}"
        )
    shown = len(page["items"])
    click.echo(f"{shown} of {page['total']} dead letter(s)" if shown else "no dead letters")


@dlq.command()
@click.argument("dead_letter_id", metavar="ID", type=int)
@_JSON
@_URL
def show(dead_letter_id: int, as_json: bool, url: str | None) -> None:
    """Show a dead letter: why it failed, its headers, payload and replays."""
    with _client(url) as client:
        found = client.call("GET", f"/api/v1/dlq/{dead_letter_id}")
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    lines = [
        f"dead letter {found['id']}  ({found['status']})",
        f"  error        {found['error_class']}: {found['error_message']}",
        f"  reason       {found['reason']}  attempts {found['attempts']}"
        f"  replays so far {found['replay_count']}",
        f"  source       {found['source_topic']} [{found['source_partition']}]"
        f" @ {found['source_offset']}  group {found['consumer_group']}",
        f"  failed       {found['first_failure_at']} .. {found['last_failure_at']}",
        f"  workflow     {found['workflow_id']}  task {found['task_id']}",
        f"  event        {found['event_type']}  {found['event_id']}",
        f"  key          {found['key']}",
        "  headers",
        *(f"    {h['name']}: {_header_value(h)}" for h in found["headers"]),
        "  payload",
        *(
            "    " + line
            for line in (
                json.dumps(found["payload"], indent=2)
                if found["payload"] is not None
                else str(found["value"] or found["value_base64"])
            ).splitlines()
        ),
    ]
    for replay in found["replays"]:
        lines.append(
            f"  replay {replay['request_id']} by {replay['actor']} at {replay['created_at'][:19]}:"
            f" {replay['outcome']}" + (f" ({replay['detail']})" if replay["detail"] else "")
        )
    click.echo("\n".join(lines))


@dlq.command()
@click.argument("ids", nargs=-1, type=int, metavar="[ID]...")
@click.option("--filter", "expression", metavar="EXPR", help="e.g. 'error=ValueError since=2h'.")
@click.option("--to", "target", metavar="TOPIC", help="Send to this topic instead.")
@click.option(
    "--edit",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON file with the new payload.",
)
@click.option(
    "--merge-patch",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON merge patch (RFC 7386) applied to each payload.",
)
@click.option(
    "--header",
    "set_headers",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set a header (replacing every header of that name); repeatable.",
)
@click.option(
    "--remove-header",
    "removed_headers",
    multiple=True,
    metavar="NAME",
    help="Remove every header of that name; repeatable.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be sent; send nothing.")
@click.option("--rate", metavar="N/s", help="Messages per second, or 'unlimited' (default 200/s).")
@click.option("--force", is_flag=True, help="Replay past the loop guard's limit.")
@click.option("--request-id", metavar="ID", help="Retry-safe id (default: a new one).")
@_JSON
@_URL
def replay(
    ids: tuple[int, ...],
    expression: str | None,
    target: str | None,
    edit: Path | None,
    merge_patch: Path | None,
    set_headers: tuple[str, ...],
    removed_headers: tuple[str, ...],
    dry_run: bool,
    rate: str | None,
    force: bool,
    request_id: str | None,
    as_json: bool,
    url: str | None,
) -> None:
    """Replay dead letters (by ID, or all matching --filter) to their source topic.

    Edited payloads and headers are checked (the record must decode as an event and
    pass its schema) before anything is sent; --header and --remove-header repair a
    record's headers, e.g. --header ce_type=waypost.goal.submitted. Each dead letter
    is sent at most once; running the same --request-id again sends nothing twice.
    Exit code 1 when some were refused or invalid.
    """
    body: dict[str, Any] = {**_selection(ids, expression), "dry_run": dry_run, "force": force}
    body["request_id"] = request_id or str(uuid.uuid4())
    if target:
        body["to"] = target
    if edit and merge_patch:
        raise click.UsageError("give --edit or --merge-patch, not both")
    edits: dict[str, Any] = {}
    if edit:
        edits["replace"] = _read_json(edit)
    if merge_patch:
        edits["merge_patch"] = _read_json(merge_patch)
    headers = _header_edit(set_headers, removed_headers)
    if headers:
        edits["headers"] = headers
    if edits:
        body["edit"] = edits
    if rate:
        body["rate"] = _rate(rate)
    with _client(url) as client:
        try:
            answer = client.call("POST", "/api/v1/dlq/replays", json=body)
        except ApiError as exc:
            if dry_run:
                raise
            raise ApiError(
                f"{exc}\nIf the request may have reached the server, run the same command "
                f"with --request-id {body['request_id']}: it never sends twice."
            ) from None
        if dry_run:
            _print_dry_run(answer, as_json, show_headers=bool(headers))
            return
        state = _follow(client, answer, quiet=as_json)
    if as_json:
        click.echo(json.dumps(state, indent=2))
    else:
        counts = state["counts"]
        click.echo(
            f"replay {state['id']} {state['state']}: {counts['sent']} sent, {counts['noop']} "
            f"already replayed or closed, {counts['refused']} refused by the loop guard, "
            f"{counts['invalid']} invalid" + (f"; {state['error']}" if state["error"] else "")
        )
        if counts["refused"] or counts["invalid"]:
            click.echo(f"see why: waypost dlq show ID (or GET /api/v1/dlq/replays/{state['id']})")
    if state["state"] == "failed" or state["counts"]["refused"] or state["counts"]["invalid"]:
        raise SystemExit(1)


@dlq.command()
@click.argument("ids", nargs=-1, type=int, metavar="[ID]...")
@click.option("--filter", "expression", metavar="EXPR", help="e.g. 'error=ValueError'.")
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@_URL
def discard(ids: tuple[int, ...], expression: str | None, reason: str, url: str | None) -> None:
    """Mark pending dead letters discarded: they will not be replayed."""
    _close("discard", ids, expression, reason, url)


@dlq.command()
@click.argument("ids", nargs=-1, type=int, metavar="[ID]...")
@click.option("--filter", "expression", metavar="EXPR", help="e.g. 'workflow=...'.")
@click.option("--reason", required=True, help="How it was fixed (kept in the audit trail).")
@_URL
def resolve(ids: tuple[int, ...], expression: str | None, reason: str, url: str | None) -> None:
    """Mark pending dead letters resolved (fixed some other way)."""
    _close("resolve", ids, expression, reason, url)


@dlq.command()
@_JSON
@_URL
def stats(as_json: bool, url: str | None) -> None:
    """Count dead letters per source topic, error class and status."""
    with _client(url) as client:
        rows = client.call("GET", "/api/v1/dlq/stats")
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row['count']:>7}  {row['status']:9}  {row['source_topic']:36}  "
            f"{row['error_class'] or '-'}"
        )
    if not rows:
        click.echo("no dead letters")


class _client:  # noqa: N801 - used as `with _client(url) as client`
    def __init__(self, url: str | None) -> None:
        self.client = client_for(url)

    def __enter__(self) -> Client:
        return self.client

    def __exit__(self, *_: object) -> None:
        self.client.close()


def _header_value(header: dict[str, Any]) -> str:
    value = header["value"]
    return str(value) if value is not None else f"(base64) {header['base64']}"


def _selection(ids: tuple[int, ...], expression: str | None) -> dict[str, Any]:
    if bool(ids) == bool(expression):
        raise click.UsageError("name dead letters by ID, or select them with --filter EXPR")
    return {"ids": list(ids)} if ids else {"filter": expression}


def _close(
    action: str, ids: tuple[int, ...], expression: str | None, reason: str, url: str | None
) -> None:
    with _client(url) as client:
        answer = client.call(
            "POST", f"/api/v1/dlq/{action}", json={**_selection(ids, expression), "reason": reason}
        )
    done = "discarded" if action == "discard" else "resolved"
    click.echo(f"{len(answer['changed'])} {done}; {answer['noop']} were not pending")


def _rate(text: str) -> float | str:
    if text == "unlimited":
        return text
    try:
        value = float(text.removesuffix("/s"))
    except ValueError:
        raise click.BadParameter(f"{text!r}: use a number such as 500/s, or unlimited") from None
    if value <= 0:
        raise click.BadParameter("the rate must be above 0 (or unlimited)")
    return value


def _header_edit(set_headers: tuple[str, ...], removed: tuple[str, ...]) -> dict[str, str | None]:
    """The API's header edit: NAME=VALUE sets a header, a removed NAME is null."""
    changes: dict[str, str | None] = {}
    for item in set_headers:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"{item!r}: write NAME=VALUE", param_hint="--header")
        changes[name] = value
    for name in removed:
        if name in changes:
            raise click.UsageError(f"header {name!r} is both set and removed")
        changes[name] = None
    return changes


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise click.BadParameter(f"{path} is not JSON: {exc}") from None


def _follow(client: Client, state: dict[str, Any], *, quiet: bool) -> dict[str, Any]:
    """Poll the replay until it finishes, with a progress bar."""
    path = f"/api/v1/dlq/replays/{state['id']}"
    if quiet:
        while state["state"] == "running":
            time.sleep(0.2)
            state = client.call("GET", path)
        return state
    with click.progressbar(
        length=max(1, state["total"]), label=f"replaying {state['total']}", show_pos=True, file=None
    ) as bar:
        shown = 0
        while True:
            bar.update(state["done"] - shown)
            shown = state["done"]
            if state["state"] != "running":
                return state
            time.sleep(0.2)
            state = client.call("GET", path)


def _print_dry_run(answer: dict[str, Any], as_json: bool, *, show_headers: bool = False) -> None:
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(answer["counts"].items()))
    click.echo(f"dry run: {answer['total']} dead letter(s) match: {counts or 'nothing'}")
    for preview in answer["previews"]:
        click.echo(
            f"\n#{preview['dead_letter_id']}: {preview['outcome']}"
            + (f" ({preview['detail']})" if preview["detail"] else "")
            + (f" -> {preview['topic']}" if preview["topic"] else "")
        )
        if show_headers:  # the headers as they would be sent, after the edit
            for header in preview["headers"]:
                click.echo(f"    {header['name']}: {_header_value(header)}")
        for line in json.dumps(preview["payload"], indent=2).splitlines():
            click.echo("    " + line)
    if answer["total"] > len(answer["previews"]):
        click.echo(f"\n(and {answer['total'] - len(answer['previews'])} more)")
    click.echo("\nnothing was sent (dry run)")


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
