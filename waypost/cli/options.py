"""Click options more than one command shares."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def config_files(envvar: str) -> Callable[[F], F]:
    """``--config FILE_OR_DIR`` (repeatable, default ``envvar``): the YAML files of a
    command such as ``waypost a2a bridge`` or ``waypost bridge run``, passed as ``paths``."""
    return click.option(
        "--config",
        "paths",
        multiple=True,
        required=True,
        envvar=envvar,
        metavar="FILE_OR_DIR",
        type=click.Path(exists=True, path_type=Path),
        help="A bridge file, or a directory of them (*.yaml, *.yml); repeatable (default "
        f"{envvar}, several separated by the path separator).",
    )


def check_flag(lists: str) -> Callable[[F], F]:
    """``--check``: only validate the files, listing ``lists`` for each entry."""
    return click.option(
        "--check",
        is_flag=True,
        help=f"Only validate the files: list each bridge ({lists}) and exit. An invalid "
        "file stops it with exit status 2, naming each file, field and line.",
    )
