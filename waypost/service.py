"""One start-up and shutdown for every service process.

The orchestrator, the dead-letter indexer and the agent workers start alike: logging;
their endpoints (settings, else the running ``waypost up`` stack); the database engine;
stop on SIGTERM/SIGINT; telemetry (/metrics, /healthz, /readyz); the database schema,
waited for in place while the database is out of reach (``/readyz`` says why meanwhile).
Then their threads run until one stops or dies, and all is released in reverse order.
A main says what differs (a ``Service``) and builds its threads (``run``); the agent
workers, which run their own threads, use ``started``; the HTTP app, which uvicorn runs,
uses ``connected``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine

from waypost import endpoints, migrate
from waypost.bus.kafka import KafkaBus
from waypost.db import make_engine
from waypost.endpoints import Endpoints
from waypost.lifecycle import configure_logging, run_threads, stop_on_signals
from waypost.outages import Outages
from waypost.settings import CommonSettings
from waypost.telemetry.setup import ProcessTelemetry, process_telemetry

Threads = Mapping[str, Callable[[], None]]


@dataclass(frozen=True)
class Service:
    """What differs between the services' start-ups."""

    name: str  # prefixes its log lines; the process is "waypost-<name>"
    database: bool = True  # make the engine up front and wait for the schema
    pool_size: int = 5

    @property
    def process(self) -> str:
        """Its name in traces (``service.name``) and in PostgreSQL's connection list."""
        return f"waypost-{self.name}"

    @property
    def needs(self) -> tuple[str, ...]:
        """The endpoints it cannot start without."""
        return (endpoints.KAFKA, endpoints.DATABASE) if self.database else (endpoints.KAFKA,)


@dataclass(frozen=True)
class Connections:
    """Where a service's broker and database are, and its database engine."""

    settings: CommonSettings
    endpoints: Endpoints
    database: Engine | None  # None for a Service(database=False)

    @property
    def engine(self) -> Engine:
        """The engine of a service that declared it uses the database."""
        if self.database is None:
            raise RuntimeError("this service was declared with Service(database=False)")
        return self.database

    def bus(self) -> KafkaBus:
        """The Kafka bus at the service's broker."""
        return KafkaBus(self.endpoints.kafka_bootstrap, self.settings)


@dataclass(frozen=True)
class Started(Connections):
    """A started service: what its main builds its threads from."""

    stop: threading.Event
    telemetry: ProcessTelemetry

    @property
    def outages(self) -> Outages:
        """Where its threads report database and broker outages (``/readyz`` tells them)."""
        return self.telemetry.health.outages


@contextmanager
def connected(service: Service, settings: CommonSettings) -> Iterator[Connections]:
    """Logging configured, endpoints found and (if the service uses one) the database
    engine made for the block; the engine is disposed of at its end."""
    configure_logging(settings.log_level, name=service.name, format=settings.log_format)
    found = endpoints.resolve(settings, need=service.needs)
    engine = (
        make_engine(
            found.database_url,
            schema=settings.database_schema,
            pool_size=service.pool_size,
            app=service.process,
        )
        if service.database
        else None
    )
    try:
        yield Connections(settings, found, engine)
    finally:
        if engine is not None:
            engine.dispose()


@contextmanager
def started(service: Service, settings: CommonSettings) -> Iterator[Started]:
    """``connected``, plus a stop event set by SIGTERM/SIGINT and the process's telemetry
    (served on WAYPOST_METRICS_PORT, not ready until ``health.mark_ready()``)."""
    with connected(service, settings) as connections:
        stop = threading.Event()
        stop_on_signals(stop)
        with process_telemetry(settings, service.process, stop) as telemetry:
            yield Started(
                connections.settings,
                connections.endpoints,
                connections.database,
                stop,
                telemetry,
            )


def run(
    service: Service,
    settings: CommonSettings,
    build: Callable[[Started], Threads],
    *,
    join_timeout_s: float = 30.0,
) -> int:
    """Start the service, wait for its schema, run the threads ``build`` returns until
    SIGTERM/SIGINT or until one dies, then shut down. The exit code: 0, or 1 if a
    thread crashed (0 too if stopped while waiting for the database)."""
    with started(service, settings) as process:
        if service.database and not migrate.wait_until_current(
            process.engine, settings.database_schema, outages=process.outages, stop=process.stop
        ):
            return 0
        threads = build(process)
        process.telemetry.health.mark_ready()
        return run_threads(threads, process.stop, join_timeout_s=join_timeout_s)
