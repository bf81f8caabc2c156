"""Embedded PostgreSQL 16 + pgvector from the pgserver wheel, as a child we own.

We run pgserver's binaries ourselves (initdb once, then ``postgres`` in the foreground)
rather than its daemon helper, so the server is a supervised child stopped by PID. It
listens only on a unix socket.

As root, PostgreSQL refuses to run, so it runs as the unprivileged user ``pgserver``
(created if missing). Where that user cannot reach the wheel's binaries or the data
directory -- a checkout in root's home, say -- they are relocated rather than the home
directory opened up: the binaries are run from a copy under /var/cache/waypost and the
data lives under /var/lib/waypost, with a symlink at the requested data directory
(see ``waypost.stack.pgfiles``). Run as any other user, nothing moves.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

import psycopg

from waypost.errors import StackError
from waypost.stack import pgfiles
from waypost.stack.process import spawn, stop

SYSTEM_USER = "pgserver"
DATABASE = "waypost"
_SOCKET_PATH_MAX = 100  # unix socket paths are limited to about 107 bytes

logger = logging.getLogger(__name__)


class EmbeddedPostgres:
    """A PostgreSQL server on ``data_dir`` (initialised on first start, kept across runs).

    ``install_dir`` is a pgserver ``pginstall`` directory (default: the installed wheel's);
    ``cache_root`` and ``state_root`` are where, as root, binaries and data are relocated
    to when the ``pgserver`` user cannot reach them (default: ``pgfiles.CACHE_ROOT`` and
    ``pgfiles.STATE_ROOT``).
    """

    def __init__(
        self,
        data_dir: Path,
        log: IO[bytes] | None,
        *,
        install_dir: Path | None = None,
        cache_root: Path | None = None,
        state_root: Path | None = None,
    ) -> None:
        # The path asked for, its last component not followed: as root it may be our link.
        self.requested_dir = data_dir.absolute().parent.resolve() / data_dir.name
        self.data_dir = data_dir.resolve()
        self._log = log
        self._install_dir = install_dir
        self._cache_root = cache_root
        self._state_root = state_root
        self.process: subprocess.Popen[bytes] | None = None
        self._user = SYSTEM_USER if os.geteuid() == 0 else None
        self.socket_dir = self._choose_socket_dir()

    def url(self, database: str = DATABASE) -> str:
        """Connection URL over the unix socket."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def start(self, timeout_s: float = 60) -> str:
        """Initialise if needed, start, wait until ready, create the database."""
        install = self._install_dir or pgfiles.wheel_install()
        if self._user is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.socket_dir.mkdir(parents=True, exist_ok=True)
        else:
            install = self._prepare_as_root(install)
        bin_dir = install / "bin"
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

    def _prepare_as_root(self, install: Path) -> Path:
        """Make binaries, data and socket reachable by ``pgserver``; the install to use."""
        _ensure_user(SYSTEM_USER)
        account = pgfiles.Account.lookup(SYSTEM_USER)
        usable = pgfiles.usable_install(install, account, self._cache_root or pgfiles.CACHE_ROOT)
        if usable != install:
            self._note(
                f"running PostgreSQL's binaries from {usable}: the '{SYSTEM_USER}' user it "
                f"runs as cannot use them in {install}"
            )
        self.data_dir = self._reachable_data_dir(account)
        if self.data_dir != self.requested_dir:
            self._note(
                f"PostgreSQL's data for {self.requested_dir} lives in {self.data_dir} "
                f"({self.requested_dir} is a symlink to it)"
            )
        self.socket_dir = self._choose_socket_dir()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        closed = pgfiles.first_closed(self.socket_dir, account)
        if closed is not None and closed != self.socket_dir:
            raise StackError(
                f"PostgreSQL's socket directory {self.socket_dir} is unreachable for the "
                f"'{SYSTEM_USER}' user it runs as ({closed} is closed to other users); set "
                "TMPDIR to /tmp, or a shorter WAYPOST_DATA_DIR"
            )
        entry = pwd.getpwnam(SYSTEM_USER)
        for directory in (self.data_dir, self.socket_dir):
            os.chown(directory, entry.pw_uid, entry.pw_gid)
            directory.chmod(0o700)
        return usable

    def _reachable_data_dir(self, account: pgfiles.Account) -> Path:
        requested = self.requested_dir
        requested.parent.mkdir(parents=True, exist_ok=True)
        target = requested.resolve()
        closed = pgfiles.first_closed(target.parent, account)
        if closed is None:
            target.mkdir(exist_ok=True)
            return target
        self._note(
            f"the '{SYSTEM_USER}' user PostgreSQL runs as cannot enter {closed}, so its data "
            f"for {requested} is kept where that user can reach it"
        )
        return pgfiles.relocated_data_dir(
            requested, account, self._state_root or pgfiles.STATE_ROOT
        )

    def _note(self, message: str) -> None:
        """Tell the operator, in the log and in PostgreSQL's log file."""
        logger.info("%s", message)
        if self._log is not None:
            self._log.write(f"waypost: {message}\n".encode())
            self._log.flush()

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
                    "PostgreSQL exited at start-up; see its log (postgres.log). If it says the "
                    "lock file exists, a PostgreSQL from an earlier run still uses "
                    f"{self._where()}: stop that process first."
                )
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                time.sleep(0.1)
        self.stop()
        raise StackError(f"PostgreSQL was not ready after {timeout_s} s")

    def _where(self) -> str:
        """The data directory, saying where the data really is if it was relocated."""
        if self.data_dir == self.requested_dir:
            return str(self.data_dir)
        return f"{self.requested_dir} (its data lives in {self.data_dir})"

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
