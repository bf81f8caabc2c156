"""`waypost a2a bridge`: delegate capabilities' tasks to remote A2A agents
(docs/a2a.md, "Delegating a step to a remote agent")."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from waypost.cli.options import check_flag, config_files

_CONFIG_ENV = "WAYPOST_A2A_BRIDGES"


@click.group()
def a2a() -> None:
    """Agent2Agent (A2A): delegate steps to remote A2A agents."""


@a2a.command(name="bridge")
@config_files(_CONFIG_ENV)
@check_flag(
    "capability, remote agent, skill, governance action, environment variables its headers need"
)
def bridge(paths: tuple[Path, ...], check: bool) -> None:
    """Consume the task topic of each bridged capability and send every task to its
    remote A2A agent; the remote task's states become the task's result, failure or
    escalation.

    The worker takes the settings of `waypost agent run` (broker, namespace, database,
    WAYPOST_POLICY_DIRS, ...). Start more processes with the same files to scale out.
    """
    from waypost.a2a.main import bridges_of, main

    if not check:
        sys.exit(main(paths))
    found = bridges_of(paths)
    for name, item in sorted(found.items()):
        where = f"card {item.card_url}" if item.card_url else f"endpoint {item.endpoint}"
        needs = ", ".join(item.references()) or "none"
        click.echo(
            f"{name}: {where}, skill {item.skill or '(none)'}, action {item.action}, "
            f"environment variables: {needs}"
        )
    click.echo(f"{len(found)} bridge(s) valid")
