"""Running the items of a batch on up to N threads, one key at a time.

Items with the same key run one after another, in batch order; items with different
keys (or no key) may run at the same time. A free thread takes the first item in batch
order whose key is not running, so with one thread the batch runs in order. The
threads are daemon threads that live as long as the batch: a handler still running
when its process exits after the shutdown grace does not hold the exit up.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Finished(Generic[R]):
    """One item's outcome: what ``work`` returned, or what it raised."""

    index: int
    result: R | None
    error: BaseException | None = None


class Lanes(Generic[T, R]):
    """Runs ``work`` on every item until ``stop`` is set or ``close`` is called; collect
    the outcomes with ``take``."""

    def __init__(
        self,
        items: Sequence[T],
        *,
        key: Callable[[T], Hashable | None],
        work: Callable[[T], R],
        threads: int,
        name: str,
        stop: threading.Event | None = None,
    ) -> None:
        self._items = items
        self._keys: list[Hashable] = [
            ("index", index) if (found := key(item)) is None else ("key", found)
            for index, item in enumerate(items)
        ]
        self._work = work
        self._stop = stop or threading.Event()
        self._waiting = list(range(len(items)))
        self._busy: set[Hashable] = set()
        self._lock = threading.Condition()
        self._outcomes: queue.SimpleQueue[Finished[R]] = queue.SimpleQueue()
        self._closed = False
        self._started = 0
        self._taken: set[int] = set()
        for number in range(min(threads, len(items))):
            threading.Thread(target=self._run, name=f"{name}-{number}", daemon=True).start()

    @property
    def pending(self) -> bool:
        """True while an outcome is still to come (an item runs, or waits and may start)."""
        with self._lock:
            if self._closed or self._stop.is_set():
                return self._started > len(self._taken)
            return len(self._taken) < len(self._items)

    @property
    def running(self) -> int:
        """How many items have started and not been taken yet."""
        with self._lock:
            return self._started - len(self._taken)

    def taken(self) -> set[int]:
        """The indexes of the items whose outcome ``take`` returned."""
        with self._lock:
            return set(self._taken)

    def close(self) -> None:
        """Start no more items; those running go on to the end."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def take(self, timeout_s: float) -> list[Finished[R]]:
        """Outcomes that arrived since the last call, waiting up to ``timeout_s`` for one."""
        found: list[Finished[R]] = []
        try:
            found.append(self._outcomes.get(timeout=timeout_s))
            while True:
                found.append(self._outcomes.get_nowait())
        except queue.Empty:
            pass
        with self._lock:
            self._taken.update(outcome.index for outcome in found)
        return found

    def _next(self) -> int | None:
        """The first waiting item whose key is free (waits for one); None when done."""
        with self._lock:
            while self._waiting and not (self._closed or self._stop.is_set()):
                for position, index in enumerate(self._waiting):
                    if self._keys[index] not in self._busy:
                        del self._waiting[position]
                        self._busy.add(self._keys[index])
                        self._started += 1
                        return index
                # Every waiting key is running: wake when one finishes (or on a stop).
                self._lock.wait(0.1)
            return None

    def _run(self) -> None:
        while (index := self._next()) is not None:
            try:
                outcome = Finished(index, self._work(self._items[index]))
            except BaseException as error:
                outcome = Finished(index, None, error)
            self._outcomes.put(outcome)  # before the key is free: a key's outcomes stay in order
            with self._lock:
                self._busy.discard(self._keys[index])
                self._lock.notify_all()
