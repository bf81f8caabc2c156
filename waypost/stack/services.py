"""The embedded broker and PostgreSQL as services the supervisor of `waypost up` starts,
watches and restarts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from waypost.bus.base import Admin, TopicSpec
from waypost.stack.broker import EmbeddedBroker
from waypost.stack.postgres import EmbeddedPostgres
from waypost.stack.supervisor import Supervisor, open_log, tail

log = logging.getLogger(__name__)


@dataclass
class BrokerService:
    """The embedded broker as a supervised service.

    It keeps records in memory only, so every restart (after a crash or by the recycler)
    comes back empty; ``provision``, once set, creates the topics right after each start.
    Consumers that rejoin their groups while their topics are missing get no partitions,
    and the embedded broker may keep such a member without partitions after the topics
    come back: creating them before the clients reconnect keeps that window to
    milliseconds (the consumers' own check of topic ids covers the rest).
    """

    broker: EmbeddedBroker
    log_path: Path
    name: str = "broker"
    provision: Callable[[], None] | None = None

    def start(self) -> None:
        """Start on the same port every time (clients keep their bootstrap address),
        then create the topics."""
        with open_log(self.log_path) as output:
            self.broker = EmbeddedBroker(self.broker.binary, self.broker.port, output)
            self.broker.start()
        if self.provision is not None:
            try:
                self.provision()
            except Exception as exc:  # the orchestrator creates them on its next check
                log.warning("creating topics after the broker started failed: %s", exc)

    def stop(self) -> None:
        """Stop by PID."""
        self.broker.stop()

    def alive(self) -> bool:
        """True while it runs."""
        return self.broker.alive()

    def log_tail(self, lines: int) -> str:
        """The last lines of its log."""
        return tail(self.log_path, lines)


@dataclass
class PostgresService:
    """The embedded PostgreSQL as a supervised service."""

    data_dir: Path
    log_path: Path
    server: EmbeddedPostgres | None = None
    name: str = "postgres"

    def start(self) -> None:
        """Start (initialising the data directory on first start)."""
        with open_log(self.log_path) as output:
            self.server = EmbeddedPostgres(self.data_dir, output)
            self.server.start()

    def stop(self) -> None:
        """Fast shutdown by PID."""
        if self.server is not None:
            self.server.stop()

    def alive(self) -> bool:
        """True while it runs."""
        return self.server is not None and self.server.alive()

    def log_tail(self, lines: int) -> str:
        """The last lines of its log."""
        return tail(self.log_path, lines)


def provision_after_restarts(supervisor: Supervisor, admin: Admin, specs: list[TopicSpec]) -> None:
    """Have the embedded broker create the topics each time it starts again."""
    service = supervisor.service("broker")
    if isinstance(service, BrokerService):
        service.provision = lambda: _log_created(admin.ensure_topics(specs))


def _log_created(created: list[str]) -> None:
    """Log the topics created after the embedded broker restarted."""
    if created:
        log.warning("broker restarted empty: created %d topic(s) again", len(created))
