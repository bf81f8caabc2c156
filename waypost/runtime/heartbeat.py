"""Keeping a worker's rows in the agent registry fresh (see ``waypost.agent_registry``).

The first beat announces every capability; each later one updates ``last_heartbeat``
and the task counters, and announces again a row that went missing. The last beat, after
the consumer loops stopped, marks the rows stopped. A database that cannot be reached
only delays the registry: the worker's tasks run all the same.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import ProgrammingError, SQLAlchemyError

from waypost import agent_registry
from waypost.agent_registry import Announcement, Counters
from waypost.outages import DATABASE, Outages, dependency_of

log = logging.getLogger(__name__)


class Counted(Protocol):
    """What the heartbeat reads from a worker: its acknowledged results so far."""

    @property
    def completed(self) -> int: ...

    @property
    def failed(self) -> int: ...


class _Rate:
    """Results per minute over about the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 60.0) -> None:
        self._window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, total: int) -> float:
        self._samples.append((now, total))
        # Keep one sample at or before the window's start, so the rate spans the window.
        while len(self._samples) > 2 and self._samples[1][0] <= now - self._window_s:
            self._samples.popleft()
        then, before = self._samples[0]
        return (total - before) * 60.0 / (now - then) if now > then else 0.0


@dataclass
class _Entry:
    announcement: Announcement
    source: Counted
    rate: _Rate = field(default_factory=_Rate)
    announced: bool = False


class Heartbeat:
    """Announces a worker's capabilities and beats every ``interval_s`` until finished."""

    def __init__(
        self,
        engine: Engine,
        entries: Sequence[tuple[Announcement, Counted]],
        *,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        outages: Outages | None = None,
    ) -> None:
        self._engine = engine
        self._entries = [_Entry(announcement, source) for announcement, source in entries]
        self._interval_s = interval_s
        self._clock = clock
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self._outages = outages or Outages()

    def start(self) -> None:
        """Beat in a daemon thread from now on."""
        self._thread = threading.Thread(target=self._run, name="agent-heartbeat", daemon=True)
        self._thread.start()

    def finish(self, timeout_s: float = 10.0) -> None:
        """Stop beating and mark the rows stopped (call once the loops have stopped)."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def beat(self, *, stopped: bool = False) -> bool:
        """Update (or first announce) every row; False if the database refused."""
        try:
            with self._engine.begin() as connection:
                for entry in self._entries:
                    counters = self._counters(entry)
                    if entry.announced and agent_registry.beat(
                        connection,
                        capability=entry.announcement.capability,
                        instance=entry.announcement.instance,
                        counters=counters,
                        stopped=stopped,
                    ):
                        continue
                    agent_registry.announce(
                        connection, announcement=entry.announcement, counters=counters
                    )
                    if stopped:
                        agent_registry.beat(
                            connection,
                            capability=entry.announcement.capability,
                            instance=entry.announcement.instance,
                            counters=counters,
                            stopped=True,
                        )
        except SQLAlchemyError as error:
            if dependency_of(error) is not None:
                self._outages.failed(DATABASE, error)  # logged once per outage
                return False
            if not self._failing:
                hint = (
                    " (is the schema migrated? run `waypost migrate`)"
                    if isinstance(error, ProgrammingError)
                    else ""
                )
                log.warning("cannot update the agent registry%s; will keep trying: %s", hint, error)
            self._failing = True
            return False
        for entry in self._entries:
            entry.announced = True
        self._outages.recovered(DATABASE)
        if self._failing:
            log.info("the agent registry is up to date again")
        self._failing = False
        return True

    def _counters(self, entry: _Entry) -> Counters:
        completed, failed = entry.source.completed, entry.source.failed
        per_min = entry.rate.add(self._clock(), completed + failed)
        return Counters(completed=completed, failed=failed, per_min=round(per_min, 3))

    def _run(self) -> None:
        while True:
            self.beat()
            if self._done.wait(self._interval_s):
                break
        self.beat(stopped=True)
