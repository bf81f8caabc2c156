"""The long-running services: `waypost orchestrator run`, `waypost agent run`,
`waypost indexer run`, `waypost serve`."""

from __future__ import annotations

import os
import sys

import click


def import_from_current_directory() -> None:
    """Let `waypost ...` import the user's modules from where it runs, like `python -m`."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


@click.group()
def orchestrator() -> None:
    """The orchestrator service."""


@orchestrator.command(name="run")
def orchestrator_run() -> None:
    """Plan goals, dispatch tasks, apply results; run one or more per installation."""
    from orchestrator.service.main import main

    sys.exit(main())


@click.group()
def agent() -> None:
    """Agent workers."""


@agent.command(name="run")
@click.argument("modules", nargs=-1, required=True, metavar="MODULE...")
def agent_run(modules: tuple[str, ...]) -> None:
    """Run the @agent functions of MODULE(s): one consumer group per capability.

    Modules are imported from the current directory first (as `python -m` would).
    Start more processes with the same modules to scale out.
    """
    from waypost.runtime.main import main

    import_from_current_directory()
    sys.exit(main(modules))


@click.group()
def indexer() -> None:
    """The dead-letter indexer."""


@indexer.command(name="run")
def indexer_run() -> None:
    """Mirror every dead-letter topic (<namespace>.*.dlq) into PostgreSQL, where
    `waypost dlq` and the console search and replay them. Run one or more."""
    from orchestrator.dead_letters.indexer import main

    sys.exit(main())


@click.command()
def serve() -> None:
    """Serve the HTTP API (binds WAYPOST_HTTP_HOST:WAYPOST_HTTP_PORT, default 127.0.0.1:8000)."""
    from review_ui.main import main

    sys.exit(main())
