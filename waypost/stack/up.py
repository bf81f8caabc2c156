"""`waypost up`: start the whole platform on one machine and keep it running.

Order: broker, PostgreSQL (each only if no external one is configured), migrations and
the bootstrap providers (the first console user), topics, orchestrator, agent workers,
HTTP app; then wait until the HTTP app is ready, write stack.json, and supervise. Ctrl-C
(or SIGTERM) stops everything in reverse order; the data directory stays.

What it needs from the packages above the kernel it asks their providers for
(``waypost.plugins``): the capabilities whose topics to create, the database's
bootstrap, and the built-in agent modules.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import click

from waypost import endpoints, migrate, plugins
from waypost.bus.base import TopicSpec
from waypost.bus.kafka import KafkaBus
from waypost.db import make_engine
from waypost.errors import ConfigError, StackError
from waypost.lifecycle import stop_on_signals
from waypost.settings import StackSettings
from waypost.shipped_tools import shipped_tool_dirs, with_shipped
from waypost.stack.broker import EmbeddedBroker, tansu_binary
from waypost.stack.process import free_port, port_is_free
from waypost.stack.recycler import BrokerRecycler, quiet_orchestrator
from waypost.stack.services import BrokerService, PostgresService, provision_after_restarts
from waypost.stack.supervisor import Supervisor, WaypostProcess
from waypost.topics import Topics

# In the data directory: where each process serves /metrics (Prometheus file_sd format).
SCRAPE_TARGETS = "prometheus-targets.json"


@dataclass
class Console:
    """Progress output of `waypost up`."""

    echo: Callable[[str], None] = field(default=click.echo)

    @contextmanager
    def step(self, what: str) -> Iterator[dict[str, str]]:
        """Print ``what``, run the block, then its result and how long it took."""
        self.echo(f"  {what} ...")
        started = time.monotonic()
        outcome: dict[str, str] = {}
        yield outcome
        took = time.monotonic() - started
        detail = outcome.get("detail", "")
        self.echo(click.style("  ✓ ", fg="green") + f"{what} {detail} ({took:.1f} s)")


@dataclass
class UpOptions:
    """What the command line asked for."""

    demo: bool = False
    readiness_timeout_s: float = 90.0


def run(settings: StackSettings, options: UpOptions) -> int:
    """Start the stack, supervise it until Ctrl-C, stop it; returns the exit code."""
    console = Console()
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    running = endpoints.read(data_dir)
    if running is not None and running.pid != os.getpid():
        raise StackError(
            f"a Waypost stack already runs from {data_dir} (pid {running.pid}); stop it "
            "(Ctrl-C in its terminal) or use another WAYPOST_DATA_DIR"
        )
    if not port_is_free(settings.http_host, settings.http_port):
        raise ConfigError(
            f"WAYPOST_HTTP_PORT: port {settings.http_port} on {settings.http_host} is in use; "
            "pass --port or set WAYPOST_HTTP_PORT to a free port"
        )
    _check_policies(settings)
    builtin_modules = plugins.agent_modules()
    # The built-in agents' own tool servers (agents/tools: the help centre's search).
    settings = settings.model_copy(
        update={"tool_dirs": with_shipped(shipped_tool_dirs(builtin_modules), settings.tool_dirs)}
    )
    tool_servers = _check_tools(settings)
    agent_modules = [*builtin_modules, *settings.agent_modules]
    logs = data_dir / "logs"
    stop_requested = threading.Event()
    stop_on_signals(stop_requested)
    supervisor = Supervisor(lambda line: console.echo(click.style(line, fg="yellow")))
    console.echo(click.style("Starting Waypost", bold=True) + f" (data in {data_dir})")
    try:
        kafka, kafka_label = _start_broker(settings, supervisor, console, logs)
        database, database_label = _start_postgres(settings, supervisor, console, data_dir, logs)
        with console.step("migrating the database") as out:
            engine = make_engine(database, schema=settings.database_schema, pool_size=1)
            try:
                out["detail"] = f"schema {settings.database_schema!r} at revision " + str(
                    migrate.upgrade(engine, settings.database_schema)
                )
                prepared = plugins.bootstrap(plugins.FreshDatabase(engine, settings, data_dir))
            finally:
                engine.dispose()
        with console.step("creating topics") as out:
            capabilities = _capabilities(settings, agent_modules)
            specs = Topics(settings.namespace).specs(capabilities, settings)
            admin = KafkaBus(kafka, settings).admin()
            created = admin.ensure_topics(specs)
            provision_after_restarts(supervisor, admin, specs)
            out["detail"] = f"{len(specs)} topics ({len(created)} new)"
        http_url = f"http://{settings.http_host}:{settings.http_port}"
        env = _child_env(settings, kafka, database, data_dir)
        targets: dict[str, str] = {}
        for name, args in [
            ("orchestrator", ["orchestrator", "run"]),
            *[(f"agents:{m}", ["agent", "run", m]) for m in agent_modules],
            ("indexer", ["indexer", "run"]),
            ("http", ["serve"]),
        ]:
            with console.step(f"starting {name}") as out:
                child_env = dict(env)
                if name == "http":
                    targets[name] = f"{settings.http_host}:{settings.http_port}"
                else:
                    port = free_port()
                    child_env["WAYPOST_METRICS_PORT"] = str(port)
                    targets[name] = f"{settings.metrics_host}:{port}"
                log_path = logs / f"{_file(name)}.log"
                supervisor.start(WaypostProcess(name, args, child_env, log_path))
                out["detail"] = f"(log: {log_path}; metrics: http://{targets[name]}/metrics)"
        recycler = _broker_recycler(settings, supervisor, kafka, specs, targets)
        targets_file = _write_scrape_targets(data_dir, targets)
        with console.step("waiting for the HTTP app to be ready") as out:
            _wait_ready(http_url, options.readiness_timeout_s, stop_requested)
            out["detail"] = http_url
        endpoints.write(data_dir, endpoints.Endpoints(kafka, database, http_url, os.getpid()))
        _summary(console, http_url, kafka_label, database_label, logs, prepared, targets_file)
        if tool_servers:
            console.echo(
                f"  MCP tools    {', '.join(tool_servers)}  (WAYPOST_TOOL_DIRS: "
                f"{', '.join(str(d) for d in settings.tool_dirs)})"
            )
            console.echo("")
        if options.demo:
            from waypost.stack.demo import run_demo

            run_demo(http_url, prepared.api_token, console.echo, stop_requested)
        console.echo("Press Ctrl-C to stop.")
        supervisor.watch(stop_requested, checks=[recycler.check] if recycler else [])
        return 0
    finally:
        console.echo("Stopping Waypost ...")
        supervisor.stop_all()
        endpoints.remove(data_dir)
        console.echo("Stopped. Data kept in " + str(data_dir))


def _start_broker(
    settings: StackSettings, supervisor: Supervisor, console: Console, logs: Path
) -> tuple[str, str]:
    if settings.kafka_bootstrap:
        console.echo(f"  using Kafka at {settings.kafka_bootstrap} (WAYPOST_KAFKA_BOOTSTRAP)")
        return settings.kafka_bootstrap, f"{settings.kafka_bootstrap} (external)"
    with console.step("starting Kafka broker (Tansu, memory storage)") as out:
        service = BrokerService(
            EmbeddedBroker(tansu_binary(settings.tansu_bin), free_port(), None),
            logs / "broker.log",
        )
        supervisor.start(service)
        out["detail"] = f"at {service.broker.bootstrap}"
    return service.broker.bootstrap, f"{service.broker.bootstrap} (embedded Tansu, memory only)"


def _start_postgres(
    settings: StackSettings, supervisor: Supervisor, console: Console, data_dir: Path, logs: Path
) -> tuple[str, str]:
    if settings.database_url:
        console.echo("  using PostgreSQL at WAYPOST_DATABASE_URL")
        return settings.database_url, "external (WAYPOST_DATABASE_URL)"
    with console.step("starting PostgreSQL 16 + pgvector") as out:
        service = PostgresService(data_dir / "postgres", logs / "postgres.log")
        supervisor.start(service)
        assert service.server is not None
        out["detail"] = f"(data in {service.data_dir})"
    url = service.server.url()
    return url, f"{url} (embedded)"


def _broker_recycler(
    settings: StackSettings,
    supervisor: Supervisor,
    kafka: str,
    specs: list[TopicSpec],
    targets: dict[str, str],
) -> BrokerRecycler | None:
    """The embedded broker's bounds (None with an external broker or no limits)."""
    service = supervisor.service("broker")
    limits = settings.broker_memory_limit_mb, settings.broker_partition_limit
    if not isinstance(service, BrokerService) or not any(limits):
        return None
    admin = KafkaBus(kafka, settings).admin()

    def restart(reason: str) -> None:
        # The service creates the topics again as it starts.
        supervisor.restart("broker", f"{reason} (it keeps every record in memory)")

    def longest() -> int | None:
        try:
            return admin.longest_partition(specs)
        except Exception:
            return None  # the broker is restarting: ask again next time

    def pid() -> int | None:
        process = service.broker.process
        return process.pid if process is not None and process.poll() is None else None

    return BrokerRecycler(
        pid=pid,
        limit_bytes=settings.broker_memory_limit_mb * 2**20,
        quiet=quiet_orchestrator(f"http://{targets['orchestrator']}/metrics"),
        restart=restart,
        longest=longest,
        partition_limit=settings.broker_partition_limit,
    )


def _capabilities(settings: StackSettings, agent_modules: list[str]) -> set[str]:
    """Capabilities of every capability provider (the playbooks) and agent module (checked
    now, so errors show early)."""
    from waypost.runtime.loading import load_agents

    agents = load_agents(agent_modules)
    return plugins.capabilities(settings) | {a.capability for a in agents}


def _check_policies(settings: StackSettings) -> None:
    """Refuse to start with invalid policy files (the agent workers would refuse)."""
    if not settings.policy_dirs:
        return
    from waypost.governance import InvalidPolicies, PolicySet

    try:
        PolicySet(settings.policy_dirs)
    except InvalidPolicies as exc:
        raise ConfigError(f"WAYPOST_POLICY_DIRS: invalid policies:\n{exc}") from None


def _check_tools(settings: StackSettings) -> list[str]:
    """The names of the configured tool servers; refuse to start with invalid tool-server
    files (the agent workers would refuse)."""
    if not settings.tool_dirs:
        return []
    from waypost.tools.config import ToolSet
    from waypost.tools.errors import InvalidToolServers

    try:
        return sorted(ToolSet(settings.tool_dirs).current())
    except InvalidToolServers as exc:
        raise ConfigError(f"WAYPOST_TOOL_DIRS: invalid tool servers:\n{exc}") from None


def _child_env(
    settings: StackSettings, kafka: str, database: str, data_dir: Path
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "WAYPOST_KAFKA_BOOTSTRAP": kafka,
            "WAYPOST_DATABASE_URL": database,
            "WAYPOST_DATA_DIR": str(data_dir),
            "WAYPOST_HTTP_HOST": settings.http_host,
            "WAYPOST_HTTP_PORT": str(settings.http_port),
            "WAYPOST_PLAYBOOK_DIRS": ",".join(str(p.resolve()) for p in settings.playbook_dirs),
            "WAYPOST_POLICY_DIRS": ",".join(str(p.resolve()) for p in settings.policy_dirs),
            "WAYPOST_TOOL_DIRS": ",".join(str(p.resolve()) for p in settings.tool_dirs),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _wait_ready(http_url: str, timeout_s: float, stop_requested: threading.Event) -> None:
    from waypost.cli.client import Client

    client = Client(http_url, timeout_s=2.0)
    deadline = time.monotonic() + timeout_s
    try:
        while not client.ready():
            if stop_requested.is_set():
                raise StackError("interrupted while waiting for the HTTP app")
            if time.monotonic() > deadline:
                raise StackError(
                    f"the HTTP app at {http_url} was not ready after {timeout_s:g} s; "
                    "see its log in the logs directory"
                )
            stop_requested.wait(0.2)
    finally:
        client.close()


def _write_scrape_targets(data_dir: Path, targets: dict[str, str]) -> Path:
    """Every process's /metrics address as a Prometheus ``file_sd_configs`` file."""
    path = data_dir / SCRAPE_TARGETS
    groups = [
        {"targets": [address], "labels": {"job": "waypost", "process": name}}
        for name, address in targets.items()
    ]
    path.write_text(json.dumps(groups, indent=2) + "\n")
    return path


def _summary(
    console: Console,
    http_url: str,
    kafka: str,
    database: str,
    logs: Path,
    prepared: plugins.Prepared,
    targets_file: Path,
) -> None:
    console.echo("")
    console.echo(click.style("Waypost is running", bold=True, fg="green"))
    login = f"  log in as {prepared.login}" if prepared.login else ""
    console.echo(f"  console      {http_url}/{login}")
    console.echo(f"  HTTP API     {http_url}/api/v1  (OpenAPI: {http_url}/api/v1/openapi.json)")
    console.echo(f"  Kafka        {kafka}")
    console.echo(f"  PostgreSQL   {database}")
    console.echo(f"  logs         {logs}/")
    console.echo(f"  metrics      {targets_file}  (Prometheus file_sd: every /metrics)")
    console.echo(
        "  try          waypost goal submit support.ticket --wait "
        """--input '{"subject": "Charged twice", "body": "I was billed twice this month."}'"""
    )
    console.echo("")


def _file(name: str) -> str:
    return name.replace(":", "-")
