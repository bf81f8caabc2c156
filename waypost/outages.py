"""Riding out an outage of the database or the broker in place.

A service that loses PostgreSQL or the broker keeps running: each piece of work that
needs one is tried again with a growing delay until it is back (``retry_in_place``).
``Outages`` remembers which dependency is down, since when and why. It logs one line
when an outage starts and one when it ends (with how long it lasted and how many
attempts failed), however many attempts fail in between, and it is what /readyz answers
while the process is not ready.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from sqlalchemy.exc import (
    DBAPIError,
    InterfaceError,
    InvalidatePoolError,
    OperationalError,
    SQLAlchemyError,
)

from waypost.errors import BusError

log = logging.getLogger(__name__)

R = TypeVar("R")
DATABASE = "database"
BROKER = "broker"


def dependency_of(error: BaseException) -> str | None:
    """The dependency an error says is unreachable (None: the error is not an outage)."""
    if isinstance(
        error,
        OperationalError | InterfaceError | InvalidatePoolError | psycopg.OperationalError,
    ):
        return DATABASE
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return DATABASE
    if isinstance(error, BusError):
        return BROKER
    return None


@dataclass
class Outage:
    """One dependency out of reach: since when (monotonic clock), why, how often tried."""

    dependency: str
    since: float
    error: str
    attempts: int = 1


class Outages:
    """The outages a process is riding out now; safe to use from every thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._current: dict[str, Outage] = {}
        self._lock = threading.Lock()

    def failed(self, dependency: str, error: BaseException | str) -> None:
        """An attempt that needs ``dependency`` failed (logged once per outage)."""
        text = _first_line(error)
        with self._lock:
            outage = self._current.get(dependency)
            if outage is not None:
                outage.attempts += 1
                outage.error = text
                return
            self._current[dependency] = Outage(dependency, self._clock(), text)
        log.warning("%s unreachable, retrying until it is back: %s", dependency, text)

    def recovered(self, dependency: str) -> None:
        """An attempt that needs ``dependency`` succeeded (logged if it was out)."""
        with self._lock:
            outage = self._current.pop(dependency, None)
        if outage is not None:
            log.warning(
                "%s reachable again after %.1f s (%d failed attempt(s))",
                dependency,
                self._clock() - outage.since,
                outage.attempts,
            )

    def reason(self) -> str | None:
        """Why the process is not ready (None: no outage)."""
        with self._lock:
            current = sorted(self._current.values(), key=lambda o: o.dependency)
            now = self._clock()
        if not current:
            return None
        return "; ".join(
            f"{o.dependency} unreachable for {now - o.since:.0f} s: {o.error}" for o in current
        )


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: ``first`` doubling up to ``longest`` seconds."""

    first: float = 0.5
    longest: float = 10.0

    def after(self, delay: float) -> float:
        """The delay after one of ``delay``."""
        return min(delay * 2, self.longest)


def retry_in_place(
    action: Callable[[], R],
    *,
    outages: Outages,
    stop: threading.Event,
    backoff: Backoff = Backoff(),
) -> tuple[bool, R | None]:
    """Run ``action`` until it succeeds: (True, its result); (False, None) if ``stop`` was
    set while waiting. Errors that say the database or the broker is unreachable are
    retried with backoff; any other error is raised."""
    delay = backoff.first
    dependencies: set[str] = set()
    while True:
        try:
            result = action()
        except Exception as error:
            dependency = dependency_of(error)
            if dependency is None:
                raise
            dependencies.add(dependency)
            outages.failed(dependency, error)
            if stop.wait(delay):
                return False, None
            delay = backoff.after(delay)
            continue
        for dependency in dependencies:
            outages.recovered(dependency)
        return True, result


def _first_line(error: BaseException | str) -> str:
    text = str(error).strip()
    return (text.splitlines() or [type(error).__name__])[0][:300]


def prune_every(
    interval_s: float, stop: threading.Event, prune: Callable[[], int], what: str
) -> None:
    """Run ``prune`` (returning how many rows it deleted) every ``interval_s`` until
    ``stop``; a database outage only delays it."""
    while not stop.wait(interval_s):
        try:
            pruned = prune()
        except SQLAlchemyError as exc:
            log.warning("could not prune the %s (will try again): %s", what, exc)
            continue
        if pruned:
            log.info("pruned %d %s", pruned, what)
