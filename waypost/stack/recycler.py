"""Keeping the embedded broker small by restarting it.

Tansu with memory storage keeps every record it was ever sent (about 1.1 MB per 1,000
records of 1 KB) and never applies retention, so a `waypost up` left running grows
without end. Its fetches also slow down as a partition grows (it scans the partition's
batches): a consumer at the end of a partition of 30,000 one-record batches waits
150-300 ms for a new record instead of 10, and past about 100,000 a short fetch wait
returns nothing at all. The platform already survives a broker that restarts empty
(topics are created again, consumers read the new logs from their start, what was in
flight is retried when its lease expires), so `waypost up` restarts it on purpose: at a
quiet moment (nothing waiting in the outbox, no task out with an agent) once it passes
three quarters of ``WAYPOST_BROKER_MEMORY_LIMIT_MB`` or a partition passes
``WAYPOST_BROKER_PARTITION_LIMIT`` records, and at once at 90 % of the memory limit (so
that growth between two looks stays under it) or twice the partition limit.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes(pid: int) -> int | None:
    """A process's resident memory (Linux), or None if it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None
    return int(fields[1]) * _PAGE


def quiet_orchestrator(metrics_url: str) -> Callable[[], bool]:
    """A check that the orchestrator has nothing in flight: no outbox rows waiting for
    the broker and no task dispatched to an agent (its /metrics gauges, read from its
    tables)."""

    def quiet() -> bool:
        try:
            text = httpx.get(metrics_url, timeout=2).text
        except httpx.HTTPError:
            return False
        outbox = dispatched = None
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "waypost_outbox_backlog_records":
                    outbox = (outbox or 0) + sample.value
                elif (
                    sample.name == "waypost_capability_backlog_tasks"
                    and sample.labels.get("status") == "dispatched"
                ):
                    dispatched = (dispatched or 0) + sample.value
        return outbox == 0 and not dispatched

    return quiet


@dataclass
class BrokerRecycler:
    """Decides, every ``interval_s``, whether to restart the broker now."""

    pid: Callable[[], int | None]
    limit_bytes: int
    quiet: Callable[[], bool]
    restart: Callable[[str], None]
    longest: Callable[[], int | None] = lambda: None  # records in the longest partition
    partition_limit: int = 0
    interval_s: float = 5.0
    soft_fraction: float = 0.75
    # At once from here: the broker grows between two looks, and the limit is a bound.
    hard_fraction: float = 0.9
    # A limit below what the broker needs when empty must not restart it in a loop.
    min_gap_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    rss: Callable[[int], int | None] = resident_bytes
    recycled: int = 0
    _next: float = field(default=0.0, init=False)
    _last: float | None = field(default=None, init=False)

    def check(self) -> None:
        """Restart the broker if it is due (call often; it looks every ``interval_s``)."""
        now = self.clock()
        if now < self._next or (self.limit_bytes <= 0 and self.partition_limit <= 0):
            return
        self._next = now + self.interval_s
        urgent, soft = self._pressure()
        why = urgent or (soft if soft and self.quiet() else None)
        if why is None:
            return
        if self._last is not None and now - self._last < self.min_gap_s:
            log.warning(
                "the embedded broker is due a restart again %.0f s after the last (%s); "
                "raise WAYPOST_BROKER_MEMORY_LIMIT_MB or WAYPOST_BROKER_PARTITION_LIMIT",
                now - self._last,
                why,
            )
            self._next = self._last + self.min_gap_s
            return
        self._last = now
        self.recycled += 1
        self.restart(why)

    def _pressure(self) -> tuple[str | None, str | None]:
        """(why a restart cannot wait, why one is due at the next quiet moment)."""
        urgent = soft = None
        pid = self.pid()
        used = self.rss(pid) if pid is not None and self.limit_bytes > 0 else None
        if used is not None:
            mb, limit_mb = used / 2**20, self.limit_bytes / 2**20
            if used >= self.hard_fraction * self.limit_bytes:
                urgent = f"it holds {mb:.0f} MB, close to its {limit_mb:.0f} MB limit"
            elif used >= self.soft_fraction * self.limit_bytes:
                soft = f"it holds {mb:.0f} MB of a {limit_mb:.0f} MB limit"
        records = self.longest() if self.partition_limit > 0 else None
        if records is not None and urgent is None:
            if records >= 2 * self.partition_limit:
                urgent = f"a partition holds {records} records, twice the limit"
            elif records >= self.partition_limit and soft is None:
                soft = f"a partition holds {records} records of a {self.partition_limit} limit"
        return urgent, (f"{soft} and nothing is in flight" if soft else None)
