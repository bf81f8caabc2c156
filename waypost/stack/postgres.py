"""Embedded PostgreSQL 16 + pgvector from the pgserver wheel, as a child we own.

We run pgserver's binaries ourselves (initdb once, then ``postgres`` in the foreground)
rather than its daemon helper, so the server is a supervised child stopped by PID. It
listens only on a unix socket. As root, PostgreSQL refuses to run, so it runs as the
unprivileged user ``pgserver`` (created if missing), which must be able to reach the
data directory: keep it outside root's home directory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

import psycopg

from waypost.errors import StackError
from waypost.stack.process import spawn, stop

SYSTEM_USER = "pgserver"
DATABASE = "waypost"
_SOCKET_PATH_MAX = 100  # unix socket paths are limited to about 107 bytes


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise StackError(
            "the pgserver package (embedded PostgreSQL) is not installed; run `make install` "
            "or set WAYPOST_DATABASE_URL to an existing PostgreSQL with pgvector"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class EmbeddedPostgres:
    """A PostgreSQL server on ``data_dir`` (initialised on first start, kept across runs)."""

    def __init__(self, data_dir: Path, log: IO[bytes] | None) -> None:
        self.data_dir = data_dir.resolve()
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None
        self._user = SYSTEM_USER if os.geteuid() == 0 else None
        self.socket_dir = self._choose_socket_dir()

    def url(self, database: str = DATABASE) -> str:
        """Connection URL over the unix socket."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def start(self, timeout_s: float = 60) -> str:
        """Initialise if needed, start, wait until ready, create the database."""
        bin_dir = _bin_dir()
        self._prepare(bin_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "--auth-local=trust",
                    "--encoding=UTF8",
                    "-U",
                    "postgres",
                ]
            )
        self.process = spawn(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(self.data_dir),
                "-k",
                str(self.socket_dir),
                "-c",
                "listen_addresses=",
                "-c",
                "max_connections=200",
                "-c",
                "fsync=on",
            ],
            log=self._log,
            user=self._user,
            # Fast shutdown (SIGINT) if the supervisor dies: roll back, exit cleanly.
            death_signal=signal.SIGINT,
        )
        self._wait_ready(timeout_s)
        self._create_database()
        return self.url()

    def stop(self) -> None:
        """Fast shutdown by PID: active transactions roll back, data stays intact."""
        if self.process is not None:
            stop(self.process, sig=signal.SIGINT, timeout=30)

    def alive(self) -> bool:
        """True while the postmaster runs."""
        return self.process is not None and self.process.poll() is None

    def _choose_socket_dir(self) -> Path:
        if len(str(self.data_dir / ".s.PGSQL.5432")) <= _SOCKET_PATH_MAX:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"waypost-pg-{digest}"

    def _prepare(self, bin_dir: Path) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self._user is None:
            return
        home = Path(pwd.getpwuid(0).pw_dir).resolve()
        if home in self.data_dir.parents:
            raise StackError(
                f"WAYPOST_DATA_DIR: {self.data_dir} is inside root's home directory, which "
                f"the '{SYSTEM_USER}' user PostgreSQL runs as cannot enter; choose a data "
                "directory elsewhere (e.g. under /srv or /tmp)"
            )
        _ensure_user(SYSTEM_USER)
        entry = pwd.getpwnam(SYSTEM_USER)
        for directory in (self.data_dir, self.socket_dir):
            os.chown(directory, entry.pw_uid, entry.pw_gid)
            directory.chmod(0o700)
        _make_traversable(self.data_dir.parent)
        _make_traversable(bin_dir.parent)
        _make_readable_tree(bin_dir.parent)

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(argv, user=self._user, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"{Path(argv[0]).name} failed: {result.stderr.strip()}")

    def _wait_ready(self, timeout_s: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StackError(
                    "PostgreSQL exited at start-up; see the log in the data directory. "
                    "If it says the lock file exists, a PostgreSQL from an earlier run still "
                    f"uses {self.data_dir}: stop that process first."
                )
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                time.sleep(0.1)
        self.stop()
        raise StackError(f"PostgreSQL was not ready after {timeout_s} s")

    def _create_database(self) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{DATABASE}"')


def _ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", name], check=True)


def _make_traversable(directory: Path) -> None:
    """Let other users pass through every ancestor of ``directory`` (o+x)."""
    for path in [directory, *directory.parents]:
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(mode | stat.S_IXOTH)


def _make_readable_tree(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        wanted = mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() or mode & stat.S_IXUSR else 0)
        if wanted != mode:
            path.chmod(wanted)
