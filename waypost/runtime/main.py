"""`waypost agent run MODULE...`: one consumer group member per capability, in threads.

Start more processes with the same modules to scale out: Kafka spreads each
capability's partitions over the members of its group. Each process lists itself in the
agent registry (`waypost agents ls`) while it runs. With ``WAYPOST_POLICY_DIRS`` every
action a handler proposes (``ctx.act``) is decided by the policies in those directories;
with ``WAYPOST_TOOL_DIRS`` handlers call the MCP tool servers configured there
(``ctx.tools``, each call decided the same way; docs/mcp.md). Each process also reads
the workflow events topic in a group of its own, to tell running handlers that their
workflow was cancelled (``ctx.cancellation``; ``waypost.runtime.cancellations``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from waypost import service
from waypost.agent_registry import Announcement
from waypost.bus.base import Bus
from waypost.bus.loop import ConsumerLoop
from waypost.db import make_engine
from waypost.embeddings import Embedder, HashingEmbedder
from waypost.errors import BusError, ConfigError
from waypost.events import Event, default_codec
from waypost.governance import Gate, Governor, InvalidPolicies, MemoryGate, PolicySet
from waypost.lifecycle import run_threads
from waypost.memory import AgentMemory
from waypost.outages import Outages, prune_every, retry_in_place
from waypost.runtime.cancellations import Cancellations, listen_for_cancellations
from waypost.runtime.heartbeat import Heartbeat
from waypost.runtime.ledger import ResultLedger
from waypost.runtime.loading import load_agents
from waypost.runtime.metrics import AgentMetrics
from waypost.runtime.worker import AgentWorker
from waypost.sdk import Agent
from waypost.settings import AgentSettings, load
from waypost.shipped_tools import tool_environ, with_packaged_tools
from waypost.telemetry import NO_TRACING, Tracing
from waypost.telemetry.server import Health
from waypost.tools.metrics import ToolMetrics
from waypost.tools.setup import close_toolbox, open_toolbox
from waypost.topics import Topics

log = logging.getLogger(__name__)
_UNREPORTED = Outages()  # for workers without a health endpoint: outages are only logged


@dataclass
class WorkerEnvironment:
    """What setup functions receive (implements ``AgentEnvironment``)."""

    settings: AgentSettings
    database_url: str | None
    instance: str
    embedder: Embedder = field(default_factory=HashingEmbedder)
    _engine: Engine | None = None

    def database(self) -> Engine:
        """The database engine, created on first use."""
        if self._engine is None:
            if self.database_url is None:
                raise ConfigError(
                    "this agent needs the database: set WAYPOST_DATABASE_URL or run a "
                    "`waypost up` stack"
                )
            self._engine = make_engine(
                self.database_url, schema=self.settings.database_schema, app="waypost-agent"
            )
        return self._engine

    def close(self) -> None:
        """Release the engine."""
        if self._engine is not None:
            self._engine.dispose()


def load_governor(settings: AgentSettings, environment: WorkerEnvironment) -> Governor | None:
    """The governor of ``settings.policy_dirs`` (None without policy directories);
    ConfigError, naming every invalid file and field, if a policy file is invalid."""
    if not settings.policy_dirs:
        return None
    try:
        policies = PolicySet(
            settings.policy_dirs, check_interval_s=settings.policy_check_interval_s
        )
    except InvalidPolicies as exc:
        raise ConfigError(f"WAYPOST_POLICY_DIRS: invalid policies:\n{exc}") from None
    names = ", ".join(p.name for p in policies.current().policies) or "none"
    if environment.database_url is None:
        log.warning(
            "no database configured: governance decisions (policies: %s) are counted in "
            "this process only and audited only on the governance topic",
            names,
        )
        return MemoryGate(policies)
    log.info("governance policies in force: %s", names)
    return Gate(environment.database(), policies)


def prepare(
    agents: Sequence[Agent[Any, Any]], environment: WorkerEnvironment
) -> dict[str, dict[type, Any]]:
    """Run every setup function once; the resources of each capability by type."""
    resources: dict[str, dict[type, Any]] = {}
    for agent in agents:
        made: dict[type, Any] = {}
        for setup in agent.setups:
            value = setup(environment)
            made[type(value)] = value
        resources[agent.capability] = made
    return resources


@dataclass
class Running:
    """One capability's parts: its worker (results, counters) and consumer loop."""

    agent: Agent[Any, Any]
    worker: AgentWorker
    loop: ConsumerLoop[Event]


@dataclass(frozen=True)
class Telemetry:
    """What the workers trace and count with (nothing by default)."""

    tracing: Tracing = NO_TRACING
    metrics: AgentMetrics | None = None
    health: Health | None = None
    tools: ToolMetrics | None = None

    @property
    def outages(self) -> Outages:
        """Where the workers report database and broker outages (the health's, if any)."""
        return self.health.outages if self.health is not None else _UNREPORTED


def assemble(
    agents: Sequence[Agent[Any, Any]],
    *,
    bus: Bus,
    settings: AgentSettings,
    environment: WorkerEnvironment,
    stop: threading.Event,
    telemetry: Telemetry | None = None,
    cancellations: Cancellations | None = None,
) -> list[Running] | None:
    """Provision the topics, run the setup functions, and build one consumer loop per
    capability (not started); their workers skip and signal the attempts in
    ``cancellations``. A database or broker out of reach is waited for in place; None if
    ``stop`` was set meanwhile."""
    telemetry = telemetry or Telemetry()
    governor = load_governor(settings, environment)  # before anything else: fail fast
    toolbox = open_toolbox(
        settings.tool_dirs,
        check_interval_s=settings.policy_check_interval_s,
        environ=tool_environ(settings, environment.database_url),
        metrics=telemetry.tools,
    )
    topics = Topics(settings.namespace)
    codec = default_codec()
    ledger = (
        ResultLedger(environment.database(), outages=telemetry.outages)
        if environment.database_url
        else None
    )
    specs = topics.specs([a.capability for a in agents], settings)
    provisioned, _ = retry_in_place(
        lambda: bus.admin().ensure_topics(specs), outages=telemetry.outages, stop=stop
    )
    done, resources = retry_in_place(
        lambda: prepare(agents, environment), outages=telemetry.outages, stop=stop
    )
    if not (provisioned and done) or resources is None:
        close_toolbox(toolbox)
        return None
    running: list[Running] = []
    for agent in agents:
        worker = AgentWorker(
            agent=agent,
            publisher=bus.publisher(f"agent-{agent.capability}"),
            codec=codec,
            topics=topics,
            instance=environment.instance,
            resources=resources[agent.capability],
            memory=AgentMemory(environment.database(), environment.embedder, agent=agent.capability)
            if environment.database_url
            else None,
            governor=governor,
            ledger=ledger,
            toolbox=toolbox,
            cancellations=cancellations,
            max_local_attempts=settings.agent_max_local_attempts,
            stop=stop,
            shutdown_grace_s=settings.agent_shutdown_grace_s,
            tracing=telemetry.tracing,
            metrics=telemetry.metrics,
        )
        group = topics.agent_group(agent.capability)
        loop = ConsumerLoop(
            subscriber=bus.subscriber(
                group, [topics.tasks(agent.capability)], f"agent-{agent.capability}"
            ),
            dead_letters=bus.publisher(f"agent-{agent.capability}-dlq"),
            handler=worker.handle,
            group=group,
            codec=codec,
            stop=stop,
            batch_size=_batch_size(worker, settings.consume_batch_size),
            max_local_attempts=settings.consumer_max_attempts,
            transient=(BusError, OperationalError),
            # Handlers may run for longer than max.poll.interval.ms: keep polling.
            pause_while_handling=True,
            outages=telemetry.outages,
        )
        running.append(Running(agent, worker, loop))
    return running


def heartbeat(
    running: Sequence[Running],
    *,
    settings: AgentSettings,
    environment: WorkerEnvironment,
    outages: Outages | None = None,
) -> Heartbeat | None:
    """The registry heartbeat of these workers, or None without a database."""
    if environment.database_url is None:
        log.info("no database configured: these agents are not listed in the agent registry")
        return None
    host, pid = socket.gethostname(), os.getpid()
    return Heartbeat(
        environment.database(),
        [
            (
                Announcement(
                    capability=r.agent.capability,
                    instance=environment.instance,
                    version=r.agent.version,
                    description=r.agent.description,
                    input_schema=r.agent.input_schema(),
                    output_schema=r.agent.output_schema(),
                    concurrency=r.agent.concurrency,
                    host=host,
                    pid=pid,
                    heartbeat_interval_s=settings.agent_heartbeat_interval_s,
                ),
                r.worker,
            )
            for r in running
        ],
        interval_s=settings.agent_heartbeat_interval_s,
        outages=outages,
    )


def serve(
    agents: Sequence[Agent[Any, Any]],
    *,
    bus: Bus,
    settings: AgentSettings,
    environment: WorkerEnvironment,
    stop: threading.Event,
    telemetry: Telemetry | None = None,
) -> int:
    """Run the agents until ``stop`` is set: the consumer loops in threads, the
    cancellation listener and the registry heartbeat; 1 if a loop crashed.

    On stop each loop finishes the tasks it is running (up to the shutdown grace),
    commits what finished and leaves its group; then the registry rows are marked
    stopped.
    """
    telemetry = telemetry or Telemetry()
    cancellations = Cancellations()
    running = assemble(
        agents,
        bus=bus,
        settings=settings,
        environment=environment,
        stop=stop,
        telemetry=telemetry,
        cancellations=cancellations,
    )
    if running is None:
        return 0  # stopped while waiting for the database or the broker
    listener = listen_for_cancellations(
        bus,
        topics=Topics(settings.namespace),
        codec=default_codec(),
        instance=environment.instance,
        cancellations=cancellations,
        stop=stop,
    )
    beating = heartbeat(
        running, settings=settings, environment=environment, outages=telemetry.outages
    )
    if beating is not None:
        beating.start()
    log.info(
        "agents ready: %s (instance %s)",
        ", ".join(f"{a.capability} v{a.version}" for a in agents),
        environment.instance,
    )
    if telemetry.health is not None:
        telemetry.health.mark_ready()
    threads = {f"agent:{r.agent.capability}": r.loop.run for r in running}
    if listener is not None:
        threads["cancellations"] = listener.run
    gate = running[0].worker.governor if running else None
    if isinstance(gate, Gate):
        threads["governance-prune"] = lambda: prune_every(
            settings.policy_prune_interval_s,
            stop,
            gate.prune,
            "action counter(s) older than the longest rate window",
        )
    ledger = running[0].worker.ledger if running else None
    if ledger is not None:
        retention = settings.agent_result_retention_s
        threads["ledger-prune"] = lambda: prune_every(
            min(retention, 600.0),
            stop,
            lambda: ledger.prune(retention),
            f"recorded result(s) older than {retention:g} s",
        )
    try:
        return run_threads(
            threads,
            stop,
            join_timeout_s=settings.agent_shutdown_grace_s + 20,
        )
    finally:
        if ledger is not None:
            ledger.close()
        if beating is not None:
            beating.finish()
        close_toolbox(running[0].worker.toolbox if running else None)


def _batch_size(worker: AgentWorker, limit: int) -> Callable[[], int]:
    return lambda: worker.batch_size(limit)


# The database is optional for agents: WorkerEnvironment makes the engine on first use.
SERVICE = service.Service("agents", database=False)


def run_worker(
    name: service.Service,
    settings: AgentSettings,
    build: Callable[[service.Started], Sequence[Agent[Any, Any]]],
) -> int:
    """Run the agents ``build`` makes (given the started process, for its telemetry) as
    the service ``name`` until SIGTERM/SIGINT: the one way every agent worker runs
    (``waypost agent run``, ``waypost a2a bridge``)."""
    instance = settings.agent_instance or f"{socket.gethostname()}:{os.getpid()}"
    with service.started(name, settings) as process:
        agents = build(process)
        environment = WorkerEnvironment(settings, process.endpoints.database_url or None, instance)
        registry = process.telemetry.registry
        try:
            return serve(
                agents,
                bus=process.bus(),
                settings=settings,
                environment=environment,
                stop=process.stop,
                telemetry=Telemetry(
                    process.telemetry.tracing,
                    AgentMetrics(registry),
                    process.telemetry.health,
                    ToolMetrics(registry),
                ),
            )
        finally:
            environment.close()


def main(modules: Sequence[str], settings: AgentSettings | None = None) -> int:
    """Run the agents of ``modules`` until SIGTERM/SIGINT."""
    settings = with_packaged_tools(settings or load(AgentSettings), modules)
    agents = load_agents(modules)  # before anything connects: a wrong name fails at once
    return run_worker(SERVICE, settings, lambda process: agents)
