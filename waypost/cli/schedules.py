"""`waypost schedule add|ls|pause|resume|rm`: schedules, through the HTTP API."""

from __future__ import annotations

import json
import re
from typing import Any

import click

from waypost.cli.connect import client_for
from waypost.cli.goals import _read_input

_BOUNDED = re.compile(r"^bounded:\s*([0-9]+)$")
_URL = click.option("--url", metavar="URL", help="HTTP app URL (default: the running stack).")


@click.group()
def schedule() -> None:
    """Schedules that submit goals: cron expressions and fixed intervals.

    Schedules can also be written in YAML, in a `schedules/` directory of a playbook
    directory (see docs/triggers.md); those are listed here too, can be paused and
    resumed, and are removed by editing their file.
    """


def _catch_up(value: str) -> Any:
    """skip | one | all | bounded:N, as the API takes it."""
    if value in ("skip", "one", "all"):
        return value
    match = _BOUNDED.match(value)
    if match is None:
        raise click.BadParameter("write skip, one, all or bounded:N (e.g. bounded:3)")
    return {"bounded": int(match[1])}


@schedule.command()
@click.argument("name")
@click.option("--cron", metavar="EXPR", help="5 fields, or 6 with a leading seconds field.")
@click.option("--every", metavar="DURATION", help="A fixed interval: 30s, 5m, 1h, 1d.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of --cron.")
@click.option(
    "--catch-up",
    default="one",
    show_default=True,
    metavar="skip|one|all|bounded:N",
    help="Which slots missed while no orchestrator ran fire.",
)
@click.option("--goal-type", required=True, metavar="TYPE", help="The goal type to submit.")
@click.option(
    "--input",
    "goal_input",
    default="{}",
    metavar="JSON|@FILE",
    help="The goal input template: strings may use ${fire_time}, ${schedule}, ${slot}.",
)
@click.option("--description", default="", help="What the schedule is for.")
@click.option("--json", "as_json", is_flag=True, help="Print the schedule as JSON.")
@_URL
def add(
    name: str,
    cron: str | None,
    every: str | None,
    timezone: str,
    catch_up: str,
    goal_type: str,
    goal_input: str,
    description: str,
    as_json: bool,
    url: str | None,
) -> None:
    """Add schedule NAME, e.g. `waypost schedule add nightly --cron "0 2 * * *"
    --timezone Europe/Berlin --goal-type report.daily --input '{"day": "${fire_time}"}'`."""
    if (cron is None) == (every is None):
        raise click.UsageError("give exactly one of --cron and --every")
    body: dict[str, Any] = {
        "name": name,
        "timezone": timezone,
        "catch_up": _catch_up(catch_up),
        "goal": {"type": goal_type, "input": _read_input(goal_input)},
        "description": description,
        **({"cron": cron} if cron is not None else {"every": every}),
    }
    found = _call(url, "POST", "/api/v1/schedules", json=body)
    click.echo(json.dumps(found, indent=2) if as_json else _line(found))


@schedule.command(name="ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_URL
def list_(as_json: bool, url: str | None) -> None:
    """List the schedules with their next fire times."""
    found = _call(url, "GET", "/api/v1/schedules")
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for item in found["items"]:
        click.echo(_line(item))
    if not found["items"]:
        click.echo("no schedules")


@schedule.command()
@click.argument("name")
@_URL
def pause(name: str, url: str | None) -> None:
    """Pause schedule NAME: no slot fires until it is resumed."""
    click.echo(_line(_call(url, "POST", f"/api/v1/schedules/{name}/pause")))


@schedule.command()
@click.argument("name")
@_URL
def resume(name: str, url: str | None) -> None:
    """Resume schedule NAME; slots that came while it was paused do not fire."""
    click.echo(_line(_call(url, "POST", f"/api/v1/schedules/{name}/resume")))


@schedule.command(name="rm")
@click.argument("name")
@_URL
def remove(name: str, url: str | None) -> None:
    """Remove schedule NAME (one defined in a file is removed by editing the file)."""
    client = client_for(url)
    try:
        client.call("DELETE", f"/api/v1/schedules/{name}")
    except ValueError:
        pass  # 204: no JSON body
    finally:
        client.close()
    click.echo(f"removed {name}")


def _call(url: str | None, method: str, path: str, **kwargs: Any) -> Any:
    client = client_for(url)
    try:
        return client.call(method, path, **kwargs)
    finally:
        client.close()


def _line(item: dict[str, Any]) -> str:
    definition = item["definition"]
    when = (
        f"cron {definition['cron']!r} {definition.get('timezone', 'UTC')}"
        if "cron" in definition
        else f"every {definition['every']}"
    )
    catch_up = definition.get("catch_up", "one")
    if isinstance(catch_up, dict):
        catch_up = f"bounded:{catch_up['bounded']}"
    state = (
        click.style("paused", fg="yellow")
        if item["paused"]
        else "next " + (item["next_fire_at"] or "")
    )
    text = f"{item['name']:24} {state:32} {when} -> {definition['goal']['type']}"
    text += f"  catch-up {catch_up}  ({item['source']})"
    if item.get("last_error"):
        text += "  last error: " + " ".join(str(item["last_error"]).split())[:80]
    return text
