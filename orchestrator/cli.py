"""The orchestrator's part of the `waypost` command, plugged in by entry points
(pyproject.toml; see ``waypost.plugins``): `waypost orchestrator run`, `waypost indexer
run` and `waypost playbooks check`, and the playbooks' capabilities, whose task topics
`waypost up` and `waypost topics --create` create.

Each command imports what it runs only when it runs, so `waypost --help` stays quick.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from waypost.settings import PlaybookSettings


@click.group()
def orchestrator() -> None:
    """The orchestrator service."""


@orchestrator.command(name="run")
def orchestrator_run() -> None:
    """Plan goals, dispatch tasks, apply results; run one or more per installation."""
    from orchestrator.service.main import main

    sys.exit(main())


@click.group()
def indexer() -> None:
    """The dead-letter indexer."""


@indexer.command(name="run")
def indexer_run() -> None:
    """Mirror every dead-letter topic (<namespace>.*.dlq) into PostgreSQL, where
    `waypost dlq` and the console search and replay them. Run one or more."""
    from orchestrator.dead_letters.indexer import main

    sys.exit(main())


@click.group()
def playbooks() -> None:
    """Playbooks: the workflow templates of goal types."""


@playbooks.command()
@click.argument(
    "directories", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
def check(directories: tuple[Path, ...]) -> None:
    """Load the built-in playbooks and those in DIRECTORIES (default: WAYPOST_PLAYBOOK_DIRS)
    with the schedules of their `schedules/` directories, report errors with file, field
    and line, and list each goal type's steps and triggers, and the schedules."""
    from orchestrator.errors import PlaybookError
    from orchestrator.playbooks.registry import PlaybookRegistry
    from orchestrator.schedules.errors import ScheduleFileError
    from orchestrator.schedules.files import load_dirs
    from waypost.settings import OrchestratorSettings, load

    dirs = list(directories) or load(OrchestratorSettings).playbook_dirs
    try:
        registry = PlaybookRegistry.load(dirs)
        schedules = load_dirs(dirs)
    except (PlaybookError, ScheduleFileError) as exc:
        click.secho(str(exc), fg="red", err=True)
        sys.exit(1)
    for playbook in registry:
        steps = ", ".join(
            f"{s.name} [{s.capability}]"
            + (f" after {'+'.join(s.depends_on)}" if s.depends_on else "")
            for s in playbook.steps
        )
        click.echo(f"{playbook.type} v{playbook.version} ({playbook.source})")
        planning = playbook.planning
        if planning is not None:
            allowed = ", ".join(sorted(planning.capabilities or ())) or "the whole catalogue"
            approval = ", a reviewer approves each plan" if planning.requires_approval else ""
            click.echo(
                f"  planner: llm (up to {planning.max_steps} steps from {allowed}{approval})"
            )
        else:
            click.echo(f"  steps: {steps}")
        for trigger in playbook.triggers:
            click.echo(f"  trigger: {trigger.event_type} on {trigger.topic}")
    for found in schedules:
        spec = found.schedule.spec
        when = f"cron {spec.cron!r} ({spec.timezone})" if spec.cron else f"every {spec.every}"
        click.echo(f"schedule {found.schedule.name}: {when} -> {found.schedule.goal.goal_type}")
    click.echo(f"{len(registry.types())} playbook(s), {len(schedules)} schedule(s) OK")


def playbook_capabilities(settings: PlaybookSettings) -> frozenset[str]:
    """The capabilities of the built-in playbooks and those of WAYPOST_PLAYBOOK_DIRS (the
    ``waypost.capabilities`` provider); PlaybookError, naming file, field and line, if
    one is invalid."""
    from orchestrator.playbooks.registry import PlaybookRegistry

    return PlaybookRegistry.load(settings.playbook_dirs).capabilities()
