"""The kernel's extension points: what the packages above it plug into ``waypost``.

The kernel imports nothing above it (``make lint`` checks the layer order). Where it
needs those packages, it asks the providers a distribution registers under these entry
point groups (``[project.entry-points."<group>"]`` in its pyproject.toml); Waypost's
own are in the repository's pyproject.toml:

- ``waypost.commands``: a click command or group, added to ``waypost`` under the entry
  point's name (``waypost/cli/main.py``);
- ``waypost.capabilities``: a ``CapabilityProvider``, the capabilities whose task topics
  ``waypost up`` and ``waypost topics --create`` create;
- ``waypost.bootstrap``: a ``DatabaseBootstrap``, which prepares the database ``waypost
  up`` just migrated (the first console user, the CLI's API token);
- ``waypost.agent_modules``: a module whose ``@agent`` functions ``waypost up`` runs
  beside the ``--agents`` modules.

Providers are loaded when asked for, in the order of their entry point names. One that
cannot be loaded (a broken or partial installation) raises ``PluginError`` naming its
entry point.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import click

from waypost.errors import PluginError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from waypost.settings import PlaybookSettings, StackSettings

COMMANDS = "waypost.commands"
CAPABILITIES = "waypost.capabilities"
BOOTSTRAP = "waypost.bootstrap"
AGENT_MODULES = "waypost.agent_modules"


class CapabilityProvider(Protocol):
    """A ``waypost.capabilities`` entry point.

    Called with the settings of ``waypost up`` or ``waypost topics --create``; returns the
    capabilities whose task topics (and their dead-letter topics) must exist. It may
    raise a ``WaypostError`` whose message says what to fix (an invalid playbook); the
    command then stops with that message.
    """

    def __call__(self, settings: PlaybookSettings, /) -> Iterable[str]:
        """The capability names."""
        ...


@dataclass(frozen=True)
class FreshDatabase:
    """What a ``DatabaseBootstrap`` prepares: a database ``waypost up`` just migrated."""

    engine: Engine
    settings: StackSettings
    data_dir: Path  # the stack's data directory, resolved (the CLI token's home)


@dataclass(frozen=True)
class Prepared:
    """What a ``DatabaseBootstrap`` did: how to log in to the console (printed by
    ``waypost up``) and the API token the CLI and ``waypost up --demo`` use."""

    login: str | None = None
    api_token: str | None = None


class DatabaseBootstrap(Protocol):
    """A ``waypost.bootstrap`` entry point.

    Called by ``waypost up`` on every start, once the migrations ran; must be idempotent
    (a restarted stack keeps its users and token). The first provider that returns a
    login or token is the one ``waypost up`` shows and uses.
    """

    def __call__(self, database: FreshDatabase, /) -> Prepared:
        """Prepare the database."""
        ...


def commands() -> dict[str, Callable[[], click.Command]]:
    """The commands plugged into ``waypost``, by name; each is loaded when called
    (PluginError if it cannot be)."""
    return {point.name: partial(_command, point) for point in _entry_points(COMMANDS)}


def _command(point: EntryPoint) -> click.Command:
    loaded = _load(point)
    if not isinstance(loaded, click.Command):
        raise _not_a(point, "click command", loaded)
    return loaded


def capabilities(settings: PlaybookSettings) -> set[str]:
    """Every capability the ``waypost.capabilities`` providers name."""
    found: set[str] = set()
    for point in _entry_points(CAPABILITIES):
        provider = _load(point)
        if not callable(provider):
            raise _not_a(point, "callable", provider)
        found.update(cast(CapabilityProvider, provider)(settings))
    return found


def bootstrap(database: FreshDatabase) -> Prepared:
    """Run every ``waypost.bootstrap`` provider on a freshly migrated database; the first
    login and the first API token they return."""
    login: str | None = None
    api_token: str | None = None
    for point in _entry_points(BOOTSTRAP):
        provider = _load(point)
        if not callable(provider):
            raise _not_a(point, "callable", provider)
        prepared = cast(DatabaseBootstrap, provider)(database)
        login = login or prepared.login
        api_token = api_token or prepared.api_token
    return Prepared(login, api_token)


def agent_module_names() -> frozenset[str]:
    """The names of the registered agent modules, without importing them."""
    return frozenset(point.module for point in _entry_points(AGENT_MODULES))


def agent_modules() -> list[str]:
    """The agent modules ``waypost up`` runs without being told (imported here, so a
    broken installation fails before anything starts)."""
    modules: list[str] = []
    for point in _entry_points(AGENT_MODULES):
        if point.attr is not None or not isinstance(_load(point), types.ModuleType):
            raise PluginError(
                f"entry point {_describe(point)} must name a module (no ':attribute'); "
                "fix the distribution that declares it"
            )
        modules.append(point.module)
    return modules


def _entry_points(group: str) -> list[EntryPoint]:
    # A distribution found twice on sys.path (an editable install beside a checkout on
    # PYTHONPATH) lists its entry points twice: the first of a name wins.
    unique: dict[str, EntryPoint] = {}
    for point in entry_points(group=group):
        unique.setdefault(point.name, point)
    return [unique[name] for name in sorted(unique)]


def _load(point: EntryPoint) -> Any:
    try:
        return point.load()
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise PluginError(
            f"entry point {_describe(point)} cannot be loaded "
            f"({type(exc).__name__}{': ' + reason if reason else ''}); the installation is "
            "broken: reinstall Waypost (`pip install -e .` in a checkout)"
        ) from None


def _not_a(point: EntryPoint, expected: str, found: object) -> PluginError:
    return PluginError(
        f"entry point {_describe(point)} is not a {expected} but {type(found).__name__}; "
        "fix the distribution that declares it"
    )


def _describe(point: EntryPoint) -> str:
    return f"{point.group}:{point.name} = {point.value!r}"
