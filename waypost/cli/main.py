"""The `waypost` command: every subcommand, with --help everywhere.

The kernel's own commands are added here; those of the packages above it (the
orchestrator's, the HTTP app's) are found through the ``waypost.commands`` entry points
(``waypost.plugins``) and loaded only when listed or run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from waypost import plugins
from waypost.cli.services import import_from_current_directory
from waypost.errors import ConfigError, PluginError, WaypostError

if TYPE_CHECKING:
    from waypost.bus.base import TopicSpec
    from waypost.settings import PlaybookSettings


class _Group(click.Group):
    """Turns Waypost errors into one clear line and a non-zero exit code, and adds the
    commands plugged in by entry points to its own."""

    _plugged: dict[str, Callable[[], click.Command]] | None = None

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Its own commands and the plugged-in ones, sorted."""
        return sorted({*super().list_commands(ctx), *self._plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Its own command of that name, else the plugged-in one (loaded now)."""
        found = super().get_command(ctx, cmd_name)
        load = self._plugins().get(cmd_name) if found is None else None
        if load is None:
            return found
        try:
            found = load()
        except PluginError as exc:
            found = _unavailable(cmd_name, exc)
        self.add_command(found, cmd_name)
        return found

    def _plugins(self) -> dict[str, Callable[[], click.Command]]:
        if self._plugged is None:
            self._plugged = plugins.commands()
        return self._plugged

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)
        except WaypostError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)


def _unavailable(name: str, error: PluginError) -> click.Command:
    """Stands in for a plugged-in command that cannot be loaded: listed in --help, and
    running it prints why in one line (exit code 1)."""

    def fail() -> None:
        raise error

    return click.Command(
        name,
        callback=fail,
        help=f"Unavailable: {error}",
        short_help=f"(unavailable: `waypost {name}` says why)",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="waypost")
def main() -> None:
    """Waypost: Kafka-based agent orchestration.

    Start everything on this machine with `waypost up`, then submit goals with
    `waypost goal submit`. Settings come from WAYPOST_* environment variables
    (see docs/configuration.md).
    """


@main.command()
@click.option("--demo", is_flag=True, help="Submit sample support tickets and print results.")
@click.option("--port", type=int, help="Port of the HTTP app (default 8000, WAYPOST_HTTP_PORT).")
@click.option(
    "--agents",
    "agent_modules",
    multiple=True,
    metavar="MODULE",
    help="Also run the agents of MODULE (repeatable; WAYPOST_AGENT_MODULES).",
)
@click.option(
    "--playbooks",
    "playbook_dirs",
    multiple=True,
    metavar="DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also load the playbooks in DIR (repeatable; WAYPOST_PLAYBOOK_DIRS).",
)
@click.option(
    "--policies",
    "policy_dirs",
    multiple=True,
    metavar="DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Govern the agents with the policy files in DIR (repeatable; WAYPOST_POLICY_DIRS).",
)
@click.option(
    "--tools",
    "tool_dirs",
    multiple=True,
    metavar="DIR",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Let the agents call the MCP tool servers configured in DIR (repeatable; "
    "WAYPOST_TOOL_DIRS; see docs/mcp.md).",
)
def up(
    demo: bool,
    port: int | None,
    agent_modules: tuple[str, ...],
    playbook_dirs: tuple[Path, ...],
    policy_dirs: tuple[Path, ...],
    tool_dirs: tuple[Path, ...],
) -> None:
    """Start broker, PostgreSQL, orchestrator, agents, dead-letter indexer and HTTP app;
    Ctrl-C stops all.

    Embedded services start for whatever is not configured: set
    WAYPOST_KAFKA_BOOTSTRAP or WAYPOST_DATABASE_URL to use existing ones.
    """
    from waypost.cli.services import import_from_current_directory
    from waypost.settings import StackSettings, load
    from waypost.stack.up import UpOptions, run

    import_from_current_directory()  # --agents modules are checked at start-up
    base = load(StackSettings)
    overrides: dict[str, Any] = {}
    if port is not None:
        overrides["http_port"] = port
    if agent_modules:
        overrides["agent_modules"] = [*base.agent_modules, *agent_modules]
    if playbook_dirs:
        overrides["playbook_dirs"] = [*base.playbook_dirs, *playbook_dirs]
    if policy_dirs:
        overrides["policy_dirs"] = [*base.policy_dirs, *policy_dirs]
    if tool_dirs:
        overrides["tool_dirs"] = [*base.tool_dirs, *tool_dirs]
    settings = load(StackSettings, **overrides) if overrides else base
    sys.exit(run(settings, UpOptions(demo=demo)))


@main.command()
def migrate() -> None:
    """Bring the database schema up to date (waypost up does this on start)."""
    from waypost import migrate as migrations
    from waypost.db import make_engine
    from waypost.endpoints import DATABASE, resolve
    from waypost.settings import CommonSettings, load

    settings = load(CommonSettings)
    endpoints = resolve(settings, need=(DATABASE,))
    engine = make_engine(endpoints.database_url, schema=settings.database_schema, pool_size=1)
    try:
        revision = migrations.upgrade(engine, settings.database_schema)
    finally:
        engine.dispose()
    click.echo(f"schema {settings.database_schema!r} is at revision {revision} (newest)")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--create",
    is_flag=True,
    help="First create the missing topics: those of the playbooks (WAYPOST_PLAYBOOK_DIRS "
    "and the built-in ones) and of the --agents modules, with partitions from "
    "WAYPOST_TOPIC_PARTITIONS and WAYPOST_TOPIC_PARTITION_OVERRIDES.",
)
@click.option(
    "--agents",
    "agent_modules",
    multiple=True,
    metavar="MODULE",
    help="With --create: also the task topics of this module's agents (repeatable).",
)
def topics(as_json: bool, create: bool, agent_modules: tuple[str, ...]) -> None:
    """List the topics of this installation's namespace with their partitions.

    With --create, make the missing ones first (existing topics are left as they are;
    the orchestrator and agent workers also create theirs when they start).
    """
    from waypost.bus.kafka import KafkaBus
    from waypost.endpoints import KAFKA, resolve
    from waypost.settings import PlaybookSettings, load

    if agent_modules and not create:
        raise click.UsageError("--agents goes with --create")
    settings = load(PlaybookSettings)
    endpoints = resolve(settings, need=(KAFKA,))
    admin = KafkaBus(endpoints.kafka_bootstrap, settings).admin()
    if create:
        created = admin.ensure_topics(_topic_specs(settings, agent_modules))
        if not as_json:
            click.echo(f"created {len(created)} topic(s)" + (": " if created else ""))
            for name in created:
                click.echo(f"  {name}")
    found = admin.list_topics()
    mine = {n: p for n, p in sorted(found.items()) if n.startswith(settings.namespace + ".")}
    if as_json:
        click.echo(json.dumps(mine, indent=2))
        return
    if not mine:
        click.echo(f"no topics under namespace {settings.namespace!r}")
    for name, partitions in mine.items():
        kind = "dead letters" if name.endswith(".dlq") else ""
        click.echo(f"{name:60} {partitions:3d} partitions  {kind}")


def _topic_specs(settings: PlaybookSettings, agent_modules: Sequence[str]) -> list[TopicSpec]:
    """Every topic the capability providers (the playbooks) and the agent modules use."""
    from waypost.runtime.loading import load_agents
    from waypost.topics import Topics

    import_from_current_directory()
    capabilities = plugins.capabilities(settings)
    capabilities |= {a.capability for a in load_agents(agent_modules)}
    return Topics(settings.namespace).specs(sorted(capabilities), settings)


from waypost.cli import agents, dlq, goals, services, workflows  # noqa: E402
from waypost.cli.audit import audit  # noqa: E402
from waypost.cli.breakers import breakers  # noqa: E402
from waypost.cli.quality import quality  # noqa: E402
from waypost.cli.schedules import schedule  # noqa: E402
from waypost.tools.cli import tools  # noqa: E402

main.add_command(goals.goal)
main.add_command(workflows.workflow)
main.add_command(services.agent)
main.add_command(dlq.dlq)
main.add_command(agents.agents)
main.add_command(breakers)
main.add_command(audit)
main.add_command(quality)
main.add_command(schedule)
main.add_command(tools)
