"""Replays run in the HTTP app's background threads, so that a long one (thousands of
dead letters at 200/s) neither holds a request open nor dies with it: a request is
answered at once with the replay's id, and its progress is read while it runs. Replays
left running by a stopped app are resumed when it starts again (each dead letter is
still sent at most once)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from orchestrator.dead_letters.replay import Replayer
from orchestrator.errors import ReplayError

log = logging.getLogger(__name__)


@dataclass
class ReplayRunner:
    """Runs replay requests, each once at a time in this process."""

    replayer: Replayer
    workers: int = 2
    _pool: ThreadPoolExecutor | None = field(default=None, init=False)
    _running: dict[str, Future[None]] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def start(self, request_id: str) -> None:
        """Run a request in the background unless it runs already."""
        with self._lock:
            if request_id in self._running:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="replay")
            future = self._pool.submit(self._run, request_id)
            self._running[request_id] = future
        future.add_done_callback(lambda _: self._forget(request_id))

    def wait(self, request_id: str, timeout: float | None = None) -> None:
        """Until the request finished here (for tests and the CLI's --wait)."""
        with self._lock:
            future = self._running.get(request_id)
        if future is not None:
            future.result(timeout)

    def resume_unfinished(self) -> list[str]:
        """Start every request a previous run of the app left running."""
        ids = self.replayer.unfinished()
        for request_id in ids:
            log.info("resuming replay %s", request_id)
            self.start(request_id)
        return ids

    def close(self) -> None:
        """Stop after the current chunk; unfinished requests resume on the next start."""
        self.replayer.stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, request_id: str) -> None:
        try:
            state = self.replayer.run(request_id)
            log.info("replay %s %s: %s", request_id, state.state, state.counts)
        except ReplayError as exc:
            log.warning("replay %s failed: %s", request_id, exc)
        except Exception:
            log.exception(
                "replay %s stopped by an unexpected error; it resumes on restart", request_id
            )

    def _forget(self, request_id: str) -> None:
        with self._lock:
            self._running.pop(request_id, None)
