"""The result ledger: a worker records each task's answer before it takes the next task.

Offsets are committed a batch at a time, after the batch's results are acknowledged, so
a worker killed or frozen mid-batch has its batch delivered again, to itself or another
member. Without a record of what it had already answered, every handler of that batch
would run again (hundreds of re-runs per crash, each a real side effect). With the
ledger, a delivered task whose answer is recorded is answered from the record (the same
records are published again) and only the tasks that were running when the worker died
run again: at most its concurrency.

A task's answer is recorded before its lane takes another task, unless the handler ran
for less time than a recording takes: re-running such a task costs less than waiting,
so its answer is recorded in the background while the lane goes on (a crash may then
re-run the few tasks answered in the last few milliseconds). Recording is a group
commit: one writer thread, on a connection of its own with asynchronous commit, inserts
every answer that arrived meanwhile in one statement, so the cost per task is a share
of one round trip. When the database cannot be reached the worker goes on without
recording (the outage is logged once); a crash then re-runs more.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Connection, Engine, text

from waypost.events import utcnow
from waypost.outages import DATABASE, Outages, dependency_of
from waypost.runtime.recorded import Answer, Attempt, Reply, delete_before, find_answers
from waypost.runtime.recorded import insert_answers as _insert

log = logging.getLogger(__name__)

_WAIT_S = 10.0  # longest a lane waits for its answer to be recorded before going on


@dataclass
class _Pending:
    answer: Answer
    done: threading.Event = field(default_factory=threading.Event)


class ResultLedger:
    """Records answers (group commit) and finds the recorded ones; thread-safe."""

    def __init__(self, engine: Engine, *, outages: Outages | None = None) -> None:
        self._engine = engine
        self._outages = outages or Outages()
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()
        self._broken = False
        self._connection: Connection | None = None
        # How long a recording takes (moving average), to decide whether to wait for it.
        self.latency_s = 0.001
        self.recorded_count = 0

    def find(self, attempts: Sequence[Attempt]) -> dict[Attempt, list[Reply]]:
        """The answers already recorded for these attempts (none if the database is out)."""
        try:
            with self._engine.connect() as conn:
                found = find_answers(conn, attempts=attempts)
        except Exception as error:
            self._failed(error)
            return {}
        self._outages.recovered(DATABASE)
        return found

    def record(self, answer: Answer, *, handler_s: float) -> None:
        """Record an answer. Returns once it is committed (or could not be) if the
        handler ran ``handler_s`` seconds or more than a recording takes; at once
        otherwise, recording it in the background."""
        self._start()
        pending = _Pending(answer)
        self._queue.put(pending)
        if handler_s < self.latency_s:
            return  # cheaper to run again than to wait for
        if not pending.done.wait(_WAIT_S):
            log.warning("the result ledger is slow; going on without waiting for it")

    def prune(self, older_than_s: float) -> int:
        """Forget answers recorded more than ``older_than_s`` ago; how many."""
        with self._engine.begin() as conn:
            return delete_before(conn, before=utcnow() - timedelta(seconds=older_than_s))

    def close(self) -> None:
        """Record what is queued, then stop the writer."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(None)
            writer.join(_WAIT_S)
        self._drop_connection()

    def _start(self) -> None:
        with self._lock:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write, name="result-ledger", daemon=True
                )
                self._writer.start()

    def _write(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first]
            try:
                while True:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            pending = [item for item in batch if item is not None]
            if pending:
                self._commit(pending)
            if None in batch:
                return

    def _commit(self, pending: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            _insert(self._writer_connection(), answers=[item.answer for item in pending])
        except Exception as error:
            self._drop_connection()
            self._failed(error)
        else:
            self.latency_s = 0.8 * self.latency_s + 0.2 * (time.perf_counter() - started)
            self.recorded_count += len(pending)
            self._outages.recovered(DATABASE)
        finally:
            for item in pending:
                item.done.set()

    def _writer_connection(self) -> Connection:
        """The writer's own connection: each statement commits at once, asynchronously
        (the ledger guards against a crashed *worker*; a record lost to a crash of
        PostgreSQL itself only means a handler may run once more)."""
        if self._connection is None:
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(text("SET synchronous_commit = off"))
            self._connection = connection
        return self._connection

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # already broken; a new one comes next time
                connection.close()

    def _failed(self, error: Exception) -> None:
        if dependency_of(error) is not None:
            self._outages.failed(DATABASE, error)  # logged once per outage
        elif not self._broken:
            self._broken = True
            log.error(
                "the result ledger failed (is the schema migrated? `waypost migrate`); "
                "going on without it: %s",
                error,
            )
