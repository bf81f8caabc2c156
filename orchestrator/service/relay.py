"""The outbox relay: publishes outbox rows and deletes the ones the broker acknowledged.

Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so several relays (several
orchestrator replicas) share the work without publishing a row twice at the same time.
A crash between publishing and deleting publishes the row again later: consumers apply
events idempotently. The relay wakes when the intake commits (in process) or when
another process NOTIFYs (goals submitted over HTTP), and polls as a fallback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from sqlalchemy import Engine

from orchestrator.store import outbox
from waypost.bus.base import Publisher

log = logging.getLogger(__name__)


@dataclass
class Relay:
    """Moves outbox rows to the broker."""

    engine: Engine
    publisher: Publisher
    wakeup: threading.Event
    batch_size: int = 1000
    poll_interval_s: float = 0.5
    on_failure: Callable[[dict[int, str]], None] | None = None
    published: int = 0

    def run(self, stop: threading.Event) -> None:
        """Publish until stopped."""
        while not stop.is_set():
            try:
                sent, failed = self.publish_once()
            except Exception:
                log.exception("outbox relay failed; retrying")
                stop.wait(1.0)
                continue
            if failed:
                stop.wait(1.0)  # broker trouble: do not spin
            elif sent < self.batch_size:
                self.wakeup.wait(self.poll_interval_s)
                self.wakeup.clear()

    def publish_once(self) -> tuple[int, int]:
        """Publish one batch; returns (published, failed)."""
        with self.engine.begin() as conn:
            claimed = outbox.claim(conn, limit=self.batch_size)
            if not claimed:
                return 0, 0
            outcome = self.publisher.send([record for _, record in claimed])
            outbox.remove(conn, ids=[claimed[i][0] for i in outcome.delivered])
        if outcome.failed:
            log.warning(
                "%d outbox record(s) not acknowledged, kept for the next round: %s",
                len(outcome.failed),
                next(iter(outcome.failed.values())),
            )
            if self.on_failure is not None:
                self.on_failure(outcome.failed)
        self.published += len(outcome.delivered)
        return len(outcome.delivered), len(outcome.failed)


@dataclass
class OutboxListener:
    """Sets ``wakeup`` whenever another process NOTIFYs the outbox channel."""

    engine: Engine
    channel: str
    wakeup: threading.Event

    def run(self, stop: threading.Event) -> None:
        """Listen until stopped, reconnecting after database trouble."""
        while not stop.is_set():
            try:
                self._listen(stop)
            except Exception as exc:  # the database restarted or is unreachable
                log.warning("outbox listener lost its connection (%s); reconnecting", exc)
                stop.wait(1.0)

    def _listen(self, stop: threading.Event) -> None:
        with self.engine.connect() as connection:
            raw = connection.connection.driver_connection
            assert isinstance(raw, psycopg.Connection)
            raw.commit()
            raw.autocommit = True
            raw.execute(f'LISTEN "{self.channel}"')
            try:
                while not stop.is_set():
                    for _ in raw.notifies(timeout=1.0, stop_after=1):
                        self.wakeup.set()
            finally:
                raw.execute(f'UNLISTEN "{self.channel}"')
                raw.autocommit = False
