"""Supervising the processes of `waypost up`: restart what dies, stop all in reverse order."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol

from waypost.stack.process import spawn, stop


class Service(Protocol):
    """Something the supervisor starts, watches and stops."""

    name: str

    def start(self) -> None:
        """Start (blocking until it is up, where that can be told)."""
        ...

    def stop(self) -> None:
        """Stop by PID and wait."""
        ...

    def alive(self) -> bool:
        """True while it runs."""
        ...

    def log_tail(self, lines: int) -> str:
        """The last lines of its log."""
        ...


def open_log(path: Path) -> IO[bytes]:
    """A log file in append mode, with a line marking this start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("ab")
    handle.write(f"\n=== started {datetime.now().isoformat(timespec='seconds')} ===\n".encode())
    handle.flush()
    return handle


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a text file (empty if it does not exist)."""
    try:
        text = path.read_bytes()[-20000:].decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class WaypostProcess:
    """A `waypost ...` subcommand run as a child process with its own log file."""

    name: str
    args: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it (does not wait for readiness)."""
        with open_log(self.log_path) as log:
            self.process = spawn(
                [sys.executable, "-m", "waypost", *self.args], log=log, env=self.env
            )

    def stop(self) -> None:
        """SIGTERM, wait for it to finish its current work, then exit."""
        if self.process is not None:
            stop(self.process, sig=signal.SIGTERM, timeout=20)

    def alive(self) -> bool:
        """True while it runs."""
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int) -> str:
        """The last lines of its log."""
        return tail(self.log_path, lines)


@dataclass
class _Watch:
    service: Service
    started: float = field(default_factory=time.monotonic)
    delay: float = 1.0
    restart_at: float | None = None


class Supervisor:
    """Keeps services running until stopped; restarts a crashed one with backoff."""

    def __init__(self, report: Callable[[str], None]) -> None:
        self._report = report
        self._watches: list[_Watch] = []

    def start(self, service: Service) -> None:
        """Start a service now and watch it from then on."""
        service.start()
        self._watches.append(_Watch(service))

    def service(self, name: str) -> Service | None:
        """The watched service called ``name``."""
        return next((w.service for w in self._watches if w.service.name == name), None)

    def restart(self, name: str, reason: str) -> None:
        """Stop and start a running service on purpose (say why)."""
        for watch in self._watches:
            if watch.service.name == name:
                self._report(f"restarting {name}: {reason}")
                watch.service.stop()
                watch.service.start()
                watch.started = time.monotonic()
                return
        raise KeyError(name)

    def watch(
        self,
        stop_requested: threading.Event,
        poll_s: float = 0.5,
        checks: Sequence[Callable[[], None]] = (),
    ) -> None:
        """Restart crashed services until ``stop_requested`` is set, running ``checks``
        (which may restart a service on purpose) between rounds."""
        while not stop_requested.wait(poll_s):
            for check in checks:
                try:
                    check()
                except Exception as exc:
                    self._report(f"a stack check failed: {exc}")
            now = time.monotonic()
            for watch in self._watches:
                service = watch.service
                if watch.restart_at is None:
                    if service.alive():
                        if now - watch.started > 60:
                            watch.delay = 1.0  # it ran a while: forget earlier crashes
                        continue
                    self._report(
                        f"{service.name} stopped unexpectedly; restarting in {watch.delay:g} s. "
                        f"Last log lines:\n{_indent(service.log_tail(15))}"
                    )
                    watch.restart_at = now + watch.delay
                    watch.delay = min(watch.delay * 2, 30.0)
                elif now >= watch.restart_at:
                    watch.restart_at = None
                    watch.started = now
                    try:
                        service.start()
                        self._report(f"{service.name} restarted")
                    except Exception as exc:
                        self._report(f"{service.name} failed to restart: {exc}")
                        watch.restart_at = now + watch.delay

    def stop_all(self) -> None:
        """Stop every service, the last started first."""
        for watch in reversed(self._watches):
            try:
                watch.service.stop()
            except Exception as exc:
                self._report(f"stopping {watch.service.name} failed: {exc}")
        self._watches.clear()


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines()) or "    (log is empty)"
