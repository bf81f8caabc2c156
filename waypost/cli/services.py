"""`waypost agent run`: the agent workers, the one service the kernel runs itself.

The other services' commands (`waypost orchestrator run`, `waypost indexer run`,
`waypost serve`) belong to their packages and are plugged in by entry points
(``waypost.plugins``).
"""

from __future__ import annotations

import os
import sys

import click


def import_from_current_directory() -> None:
    """Let `waypost ...` import the user's modules from where it runs, like `python -m`."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


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
