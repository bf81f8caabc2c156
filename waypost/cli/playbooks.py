"""`waypost playbooks check`: validate playbooks without starting anything."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.group()
def playbooks() -> None:
    """Playbooks: the workflow templates of goal types."""


@playbooks.command()
@click.argument(
    "directories", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
def check(directories: tuple[Path, ...]) -> None:
    """Load the built-in playbooks and those in DIRECTORIES (default: WAYPOST_PLAYBOOK_DIRS),
    report errors with file, field and line, and list each goal type's steps."""
    from orchestrator.errors import PlaybookError
    from orchestrator.playbooks.registry import PlaybookRegistry
    from waypost.settings import OrchestratorSettings, load

    dirs = list(directories) or load(OrchestratorSettings).playbook_dirs
    try:
        registry = PlaybookRegistry.load(dirs)
    except PlaybookError as exc:
        click.secho(str(exc), fg="red", err=True)
        sys.exit(1)
    for playbook in registry:
        steps = ", ".join(
            f"{s.name} [{s.capability}]"
            + (f" after {'+'.join(s.depends_on)}" if s.depends_on else "")
            for s in playbook.steps
        )
        click.echo(f"{playbook.type} v{playbook.version} ({playbook.source})")
        click.echo(f"  steps: {steps}")
    click.echo(f"{len(registry.types())} playbook(s) OK")
