"""`waypost agent run MODULE...`: one consumer group member per capability, in threads.

Start more processes with the same modules to scale out: Kafka spreads each
capability's partitions over the members of its group.
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

from waypost.bus.base import Bus
from waypost.bus.kafka import KafkaBus
from waypost.bus.loop import ConsumerLoop
from waypost.db import make_engine
from waypost.embeddings import Embedder, HashingEmbedder
from waypost.errors import BusError, ConfigError
from waypost.events import default_codec
from waypost.lifecycle import configure_logging, run_threads, stop_on_signals
from waypost.runtime.loading import load_agents
from waypost.runtime.worker import AgentWorker
from waypost.sdk import Agent
from waypost.settings import AgentSettings, load
from waypost.stack import stackfile
from waypost.topics import Topics

log = logging.getLogger(__name__)


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


def workers(
    agents: Sequence[Agent[Any, Any]],
    *,
    bus: Bus,
    settings: AgentSettings,
    environment: WorkerEnvironment,
    stop: threading.Event,
) -> dict[str, Callable[[], None]]:
    """One consumer loop per capability, ready to run in threads."""
    topics = Topics(settings.namespace)
    codec = default_codec()
    bus.admin().ensure_topics(topics.specs([a.capability for a in agents], settings))
    resources = prepare(agents, environment)
    loops: dict[str, Callable[[], None]] = {}
    for agent in agents:
        worker = AgentWorker(
            agent=agent,
            publisher=bus.publisher(f"agent-{agent.capability}"),
            codec=codec,
            topics=topics,
            instance=environment.instance,
            resources=resources[agent.capability],
            max_local_attempts=settings.agent_max_local_attempts,
            stop=stop,
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
        )
        loops[f"agent:{agent.capability}"] = loop.run
    return loops


def _batch_size(worker: AgentWorker, limit: int) -> Callable[[], int]:
    return lambda: worker.batch_size(limit)


def main(modules: Sequence[str], settings: AgentSettings | None = None) -> int:
    """Run the agents of ``modules`` until SIGTERM/SIGINT."""
    settings = settings or load(AgentSettings)
    configure_logging(settings.log_level, name="agents")
    agents = load_agents(modules)
    endpoints = stackfile.resolve(settings, need=("kafka_bootstrap",))
    instance = settings.agent_instance or f"{socket.gethostname()}:{os.getpid()}"
    environment = WorkerEnvironment(
        settings, settings.database_url or endpoints.database_url or None, instance
    )
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        loops = workers(
            agents,
            bus=KafkaBus(endpoints.kafka_bootstrap, settings),
            settings=settings,
            environment=environment,
            stop=stop,
        )
        log.info(
            "agents ready: %s (instance %s)",
            ", ".join(f"{a.capability} v{a.version}" for a in agents),
            instance,
        )
        return run_threads(loops, stop)
    finally:
        environment.close()
