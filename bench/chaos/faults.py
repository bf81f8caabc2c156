"""Striking a scenario's faults in order, each when its share of the goals is in."""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.chaos.ledger import LedgerReader
from bench.chaos.load import Submitter
from bench.chaos.model import ScriptedModel
from bench.chaos.report import FaultRecord
from bench.chaos.scenarios import MODEL, Fault
from bench.chaos.stack import AGENT, UpStack, ready

# Services /readyz watches: a fault on them is over when it answers 200 again.
_WATCHED_BY_READYZ = ("broker", "postgres")


class FaultDriver:
    """Runs the faults in a thread of its own; ``records`` says what happened."""

    def __init__(
        self,
        stack: UpStack,
        http_url: str,
        ledger: Path,
        faults: Sequence[Fault],
        submitter: Submitter,
        size: int,
        echo: Callable[[str], None],
        *,
        model: ScriptedModel | None = None,
        restart_timeout_s: float = 120.0,
    ) -> None:
        self._model = model
        self._stack = stack
        self._http_url = http_url
        self._ledger = LedgerReader(ledger)
        self._working: set[int] = set()
        self._faults = list(faults)
        self._submitter = submitter
        self._size = size
        self._echo = echo
        self._restart_timeout_s = restart_timeout_s
        self._stop = threading.Event()
        self._started = time.monotonic()
        self.records: list[FaultRecord] = []
        self._thread = threading.Thread(target=self._run, name="faults", daemon=True)

    def start(self) -> None:
        """Start waiting for the first fault's moment."""
        self._started = time.monotonic()
        self._thread.start()

    def done(self) -> bool:
        """True once every fault struck and is over."""
        return not self._thread.is_alive()

    def stop(self) -> None:
        """Strike no further fault (a frozen child is continued)."""
        self._stop.set()
        self._thread.join(self._restart_timeout_s + 30)

    def _run(self) -> None:
        for fault in self._faults:
            threshold = math.ceil(fault.at * self._size)
            while not self._stop.is_set():
                accepted, _ = self._submitter.snapshot()
                if accepted >= threshold or self._submitter.done():
                    break
                time.sleep(0.05)
            if self._stop.is_set():
                return
            self._strike(fault)

    def _strike(self, fault: Fault) -> None:
        if fault.action == "outage":
            self._outage(fault)
            return
        pid = self._wait_running(fault.target)
        waited = None
        if pid is not None and fault.target == AGENT:
            waited = self._wait_working(pid)
        elif pid is not None and fault.target == "orchestrator" and self._model is not None:
            waited = self._wait_planning()
        accepted, _ = self._submitter.snapshot()
        record = FaultRecord(
            label=fault.label(),
            target=fault.target,
            at_s=round(time.monotonic() - self._started, 2),
            at_time=time.time(),
            submitted_before=accepted,
            old_pid=pid,
        )
        self.records.append(record)
        if waited is not None:
            doing = "ask for a plan" if fault.target == "orchestrator" else "run a handler"
            record.note = f"waited {waited:.1f} s for pid {pid} to {doing}"
        if pid is None:
            record.note = f"{fault.target} was not running: fault skipped"
            self._echo(f"  ! {record.label}: {record.note}")
            return
        struck = time.monotonic()
        self._echo(f"  >> {record.label}: pid {pid} ({accepted} goals accepted)")
        if fault.action == "freeze":
            self._stack.signal(pid, signal.SIGSTOP)
            self._stop.wait(fault.hold_s)
            self._stack.signal(pid, signal.SIGCONT)
            record.new_pid = pid
            record.restart_s = round(time.monotonic() - struck, 2)
            self._echo(f"  << continued pid {pid} after {record.restart_s:g} s")
        else:
            sig = signal.SIGKILL if fault.action == "kill" else signal.SIGINT
            self._stack.signal(pid, sig)
            record.new_pid = self._stack.wait_for_new(
                fault.target, pid, self._restart_timeout_s, self._stop
            )
            if record.new_pid is None:
                record.note = f"no new {fault.target} within {self._restart_timeout_s:g} s"
                self._echo(f"  ! {record.note}")
            else:
                record.restart_s = round(time.monotonic() - struck, 2)
                self._echo(
                    f"  << {fault.target} restarted as pid {record.new_pid} "
                    f"after {record.restart_s:g} s"
                )
        if fault.target in _WATCHED_BY_READYZ:
            deadline = time.monotonic() + self._restart_timeout_s
            while time.monotonic() < deadline and not self._stop.is_set():
                if ready(self._http_url):
                    record.ready_s = round(time.monotonic() - struck, 2)
                    self._echo(f"  << /readyz is 200 again {record.ready_s:g} s after the fault")
                    break
                time.sleep(0.25)
            else:
                record.note = (record.note + "; " if record.note else "") + "/readyz not 200"

    def _outage(self, fault: Fault) -> None:
        """The scripted model answers 503 for ``hold_s``."""
        assert fault.target == MODEL
        accepted, _ = self._submitter.snapshot()
        record = FaultRecord(
            label=fault.label(),
            target=fault.target,
            at_s=round(time.monotonic() - self._started, 2),
            at_time=time.time(),
            submitted_before=accepted,
            old_pid=None,
        )
        self.records.append(record)
        if self._model is None:
            record.note = "no scripted model in this scenario: fault skipped"
            self._echo(f"  ! {record.label}: {record.note}")
            return
        struck = time.monotonic()
        self._echo(f"  >> {record.label}: the model answers 503 ({accepted} goals accepted)")
        self._model.down_for(fault.hold_s)
        self._stop.wait(fault.hold_s)
        record.restart_s = round(time.monotonic() - struck, 2)
        self._echo(f"  << the model answers again after {record.restart_s:g} s")

    def _wait_planning(self, timeout_s: float = 60.0) -> float | None:
        """Wait until a plan is being asked for (the only orchestrator asks it), so the
        kill lands during a model call; how long that took, or None when one was."""
        assert self._model is not None
        if self._model.in_flight():
            return None
        began = time.monotonic()
        while time.monotonic() - began < timeout_s and not self._stop.is_set():
            time.sleep(0.02)
            if self._model.in_flight():
                break
        else:
            self._echo(f"  ! no plan asked for within {timeout_s:g} s; striking anyway")
        return time.monotonic() - began

    def _wait_working(self, pid: int, timeout_s: float = 120.0) -> float | None:
        """Wait until the agent ``pid`` ran a handler (so a kill finds work in flight);
        how long that took, or None when it had already."""
        began = time.monotonic()
        self._working.update(e.pid for e in self._ledger.poll())
        if pid in self._working:
            return None
        while time.monotonic() - began < timeout_s and not self._stop.is_set():
            time.sleep(0.1)
            self._working.update(e.pid for e in self._ledger.poll())
            if pid in self._working:
                break
        else:
            self._echo(f"  ! pid {pid} ran no handler within {timeout_s:g} s; striking anyway")
        return time.monotonic() - began

    def _wait_running(self, target: str, timeout_s: float = 60.0) -> int | None:
        """The target's PID, waiting for it if it is between restarts."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not self._stop.is_set():
            pid = self._stack.children().get(target)
            if pid is not None:
                return pid
            time.sleep(0.2)
        return None
