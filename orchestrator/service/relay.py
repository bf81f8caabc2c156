"""The outbox relay: the safety net behind publish-after-commit.

Writers publish their own outbox rows right after commit (``OutboxPublisher``). Rows
still there after a grace period belong to a writer that crashed in between, or were
refused by the broker; the relay claims them with ``FOR UPDATE SKIP LOCKED`` (several
relays share the work), publishes them and deletes the acknowledged ones. A row may thus
be published twice (a slow writer and the relay): consumers apply events idempotently.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine

from orchestrator.store import outbox
from waypost.bus.base import Publisher
from waypost.outages import Outages, retry_in_place

log = logging.getLogger(__name__)


@dataclass
class Relay:
    """Publishes outbox rows their writers did not."""

    engine: Engine
    publisher: Publisher
    clock: Callable[[], datetime]
    grace_s: float = 5.0
    batch_size: int = 1000
    poll_interval_s: float = 1.0
    outages: Outages = field(default_factory=Outages)
    published: int = 0

    def run(self, stop: threading.Event) -> None:
        """Sweep until stopped (a database outage is waited out in place)."""
        while not stop.is_set():
            try:
                _, counts = retry_in_place(self.publish_once, outages=self.outages, stop=stop)
                sent, failed = counts or (0, 0)
            except Exception:
                log.exception("outbox relay failed; retrying")
                sent, failed = 0, 1
            if failed or sent < self.batch_size:
                stop.wait(self.poll_interval_s)

    def publish_once(self) -> tuple[int, int]:
        """Publish one batch of old rows; returns (published, failed)."""
        created_before = self.clock() - timedelta(seconds=self.grace_s)
        with self.engine.begin() as conn:
            claimed = outbox.claim(conn, limit=self.batch_size, created_before=created_before)
            if not claimed:
                return 0, 0
            outcome = self.publisher.send([record for _, record in claimed])
            outbox.remove(conn, ids=[claimed[i][0] for i in outcome.delivered])
            outbox.postpone(conn, ids=[claimed[i][0] for i in outcome.failed])
        if outcome.delivered:
            log.info("relay published %d event(s) left in the outbox", len(outcome.delivered))
        if outcome.failed:
            log.warning(
                "%d outbox event(s) still not acknowledged: %s",
                len(outcome.failed),
                next(iter(outcome.failed.values())),
            )
        self.published += len(outcome.delivered)
        return len(outcome.delivered), len(outcome.failed)
