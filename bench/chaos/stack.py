"""One `waypost up` per scenario run: start it, find its children by PID, signal them, stop it.

Children are found with psutil from `waypost up`'s PID and named by their command line
the way `waypost up` names them (``broker``, ``postgres``, ``orchestrator``,
``agents:MODULE``, ``indexer``, ``http``). Every signal goes to one PID we looked up.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import yaml

from waypost.stack.process import free_port, spawn

ROOT = Path(__file__).resolve().parents[2]
AGENT_MODULE = "bench.chaos.ledger_agent"
AGENT = f"agents:{AGENT_MODULE}"
PLAYBOOKS = ROOT / "bench" / "chaos" / "playbooks"
PLANNED_PLAYBOOKS = ROOT / "bench" / "chaos" / "playbooks_planned"
LEDGER_ENV = "CHAOS_LEDGER"  # read by bench.chaos.ledger_agent


class StackFailed(Exception):
    """`waypost up` did not start, or stopped by itself."""


@dataclass(frozen=True)
class Started:
    """Where a started stack is and how to talk to it."""

    data_dir: Path
    http_url: str
    token: str
    ledger: Path


def child_name(cmdline: list[str]) -> str | None:
    """The name `waypost up` gives the child with this command line (None: not ours)."""
    if not cmdline:
        return None
    program = Path(cmdline[0]).name
    if program == "tansu":
        return "broker"
    if program == "postgres":
        return "postgres"
    if "waypost" not in cmdline:
        return None
    args = cmdline[cmdline.index("waypost") + 1 :]
    if args[:2] == ["agent", "run"] and len(args) > 2:
        return f"agents:{args[2]}"
    return {"orchestrator": "orchestrator", "indexer": "indexer", "serve": "http"}.get(
        args[0] if args else ""
    )


class UpStack:
    """A `waypost up` in a fresh data directory under the temporary directory."""

    def __init__(
        self,
        extra_env: Mapping[str, str],
        lease_s: float | None = None,
        playbook_dirs: Sequence[Path] = (PLAYBOOKS,),
    ) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="waypost-chaos-", dir=tempfile.gettempdir()))
        # PostgreSQL runs as an unprivileged user when we are root: it must get in.
        self.data_dir.chmod(0o755)
        self.port = free_port()
        self.ledger = self.data_dir / "ledger.jsonl"
        self.up_log = self.data_dir / "up.log"
        self._extra_env = dict(extra_env)
        self.playbooks: list[Path] = (
            list(playbook_dirs)
            if lease_s is None
            else [_leased(self.data_dir, playbook_dirs, lease_s)]
        )
        self._process: subprocess.Popen[bytes] | None = None
        self._stopped: set[int] = set()

    @property
    def extra_env(self) -> Mapping[str, str]:
        """The environment given to `waypost up` on top of the harness's own."""
        return self._extra_env

    @property
    def pid(self) -> int | None:
        """`waypost up`'s PID once started."""
        return self._process.pid if self._process is not None else None

    def start(self, timeout_s: float = 180.0) -> Started:
        """Start `waypost up` and wait until it says it is running and /readyz is 200."""
        env = dict(os.environ)
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p
                ),
                "WAYPOST_DATA_DIR": str(self.data_dir),
                "WAYPOST_ADMIN_PASSWORD": secrets.token_urlsafe(18),
                "WAYPOST_KAFKA_SESSION_TIMEOUT_MS": "6000",
                LEDGER_ENV: str(self.ledger),
                **self._extra_env,
            }
        )
        argv = [
            sys.executable,
            "-m",
            "waypost",
            "up",
            "--port",
            str(self.port),
            "--agents",
            AGENT_MODULE,
        ]
        for directory in self.playbooks:
            argv += ["--playbooks", str(directory)]
        with self.up_log.open("ab") as log:
            self._process = spawn(argv, log=log, env=env, cwd=ROOT)
        http_url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise StackFailed(
                    f"waypost up exited with {self._process.returncode} while starting; "
                    f"see {self.up_log}"
                )
            if "Waypost is running" in self.up_log.read_text(errors="replace") and ready(http_url):
                token = (self.data_dir / "api-token").read_text().strip()
                return Started(self.data_dir, http_url, token, self.ledger)
            time.sleep(0.5)
        raise StackFailed(f"waypost up was not running after {timeout_s:g} s; see {self.up_log}")

    def alive(self) -> bool:
        """True while `waypost up` itself runs."""
        return self._process is not None and self._process.poll() is None

    def children(self) -> dict[str, int]:
        """Each named child of `waypost up` and its PID, right now."""
        if not self.alive():
            return {}
        assert self._process is not None
        found: dict[str, int] = {}
        try:
            kids = psutil.Process(self._process.pid).children(recursive=False)
        except psutil.Error:
            return {}
        for kid in kids:
            try:
                name = child_name(kid.cmdline())
            except psutil.Error:
                continue
            if name is not None and kid.is_running() and kid.status() != psutil.STATUS_ZOMBIE:
                found[name] = kid.pid
        return found

    def signal(self, pid: int, sig: signal.Signals) -> None:
        """Send ``sig`` to one child by PID (a child that is gone already is fine)."""
        if sig == signal.SIGSTOP:
            self._stopped.add(pid)
        elif sig == signal.SIGCONT:
            self._stopped.discard(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def wait_for_new(
        self, role: str, old_pid: int, timeout_s: float, stop: threading.Event | None = None
    ) -> int | None:
        """Wait until ``role`` runs under another PID than ``old_pid``; that PID, or None."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.alive():
            pid = self.children().get(role)
            if pid is not None and pid != old_pid:
                return pid
            if stop is not None and stop.is_set():
                return None
            time.sleep(0.1)
        return None

    def stop(self, timeout_s: float = 120.0) -> int | None:
        """SIGTERM `waypost up` and wait; SIGKILL it (and leftovers) if it hangs."""
        for pid in list(self._stopped):  # a frozen child cannot stop
            self.signal(pid, signal.SIGCONT)
        if self._process is None:
            return None
        leftovers = [psutil.Process(pid) for pid in self.children().values()]
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        for child in leftovers:
            with contextlib.suppress(psutil.Error):
                if child.is_running():  # checks the create time: never a reused PID
                    child.wait(10)
        for child in leftovers:
            with contextlib.suppress(psutil.Error):
                if child.is_running():
                    child.kill()
        return self._process.returncode

    def supervisor_lines(self, quiet: set[str]) -> list[str]:
        """What `waypost up` printed about children that stopped and restarts, with the
        last log lines it showed for children not in ``quiet``."""
        try:
            lines = self.up_log.read_text(errors="replace").splitlines()
        except OSError:
            return []
        found: list[str] = []
        showing = False
        for line in lines:
            if line.startswith("    ") and showing:
                if line.strip():
                    found.append("  " + line.strip())
                continue
            showing = False
            if "stopped unexpectedly" in line or "restart" in line:
                found.append(line.strip())
                showing = "stopped unexpectedly" in line and line.split()[0] not in quiet
        return found


def _leased(data_dir: Path, playbook_dirs: Sequence[Path], lease_s: float) -> Path:
    """A copy of the chaos playbooks whose steps have a ``lease_s`` timeout."""
    target = data_dir / "playbooks"
    target.mkdir()
    for source in (path for d in playbook_dirs for path in sorted(d.glob("*.yaml"))):
        document = yaml.safe_load(source.read_text())
        document.setdefault("defaults", {})["timeout"] = lease_s
        (target / source.name).write_text(yaml.safe_dump(document, sort_keys=False))
    return target


def ready(http_url: str) -> bool:
    """True when the HTTP app says the broker and the database answer (/readyz is 200)."""
    try:
        return httpx.get(f"{http_url}/readyz", timeout=3.0).status_code == 200
    except httpx.HTTPError:
        return False
