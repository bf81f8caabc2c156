"""Process lifecycle: logging, stop signals, and the worker threads of a service."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from types import FrameType

log = logging.getLogger(__name__)


def configure_logging(level: str, *, name: str, format: str = "text") -> None:
    """Logs on stderr, one line per record: plain text prefixed with the process's name,
    or JSON objects (``format="json"``, see ``waypost.telemetry.logs``)."""
    from waypost.telemetry.logs import JsonFormatter, TextFormatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(name) if format == "json" else TextFormatter(name))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # librdkafka and HTTP client chatter is rarely what an operator needs.
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT ask the process to finish its current work and exit."""

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            return
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def run_threads(
    workers: Mapping[str, Callable[[], None]],
    stop: threading.Event,
    *,
    join_timeout_s: float = 30.0,
) -> int:
    """Run workers in threads until ``stop`` is set or one of them dies; 1 if one died.

    Once stopped, each thread is waited for up to ``join_timeout_s``."""
    crashed: list[str] = []

    def guard(name: str, work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException:
                log.exception("%s crashed; stopping the process", name)
                crashed.append(name)
            finally:
                stop.set()

        return run

    threads = [
        threading.Thread(target=guard(name, work), name=name, daemon=True)
        for name, work in workers.items()
    ]
    for thread in threads:
        thread.start()
    while not stop.wait(0.5):
        pass
    for thread in threads:
        thread.join(timeout=join_timeout_s)
        if thread.is_alive():
            log.error("%s did not stop within %g s", thread.name, join_timeout_s)
    return 1 if crashed else 0
