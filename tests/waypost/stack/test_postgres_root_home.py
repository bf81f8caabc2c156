"""Embedded PostgreSQL as root from a checkout in root's home (issue 11, item 6).

A directory only root can enter stands in for /root: it holds a copy of the pgserver
wheel (as a checkout's .venv would) and the data directory. The 'pgserver' user that
PostgreSQL runs as cannot enter it, so binaries and data must be relocated, without
touching the directory's permissions. Cache and state roots are temporary directories
standing in for /var/cache/waypost and /var/lib/waypost.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil
import psycopg
import pytest

from tests.waiting import wait_for
from waypost.stack import pgfiles
from waypost.stack.postgres import EmbeddedPostgres
from waypost.stack.process import free_port

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="only root runs PostgreSQL as the 'pgserver' user; as anyone else nothing moves",
)


@dataclass
class RootHome:
    """A directory only root can enter, with a copy of the pgserver wheel inside."""

    path: Path
    site_packages: Path

    @property
    def install(self) -> Path:
        """The copied wheel's pginstall directory."""
        return self.site_packages / "pgserver" / "pginstall"


@dataclass
class Roots:
    """Stand-ins for /var/cache/waypost and /var/lib/waypost."""

    cache: Path
    state: Path


@pytest.fixture
def root_home() -> Iterator[RootHome]:
    """Like /root (mode 0700) holding a checkout's .venv; removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="waypost-roothome-", dir="/tmp"))
    path.chmod(0o700)
    wheel = pgfiles.wheel_install()
    site_packages = path / "wp" / ".venv" / "site-packages"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(wheel.parent, site_packages / "pgserver", symlinks=True, ignore=ignore)
    libs = wheel.parent.parent / "pgserver.libs"
    if libs.is_dir():
        shutil.copytree(libs, site_packages / "pgserver.libs", symlinks=True)
    yield RootHome(path, site_packages)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def roots() -> Iterator[Roots]:
    """Cache and state roots in a fresh directory others may enter; removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="waypost-var-", dir="/tmp"))
    path.chmod(0o755)
    yield Roots(path / "cache", path / "state")
    shutil.rmtree(path, ignore_errors=True)


def _server(data_dir: Path, output: IO[bytes], home: RootHome, roots: Roots) -> EmbeddedPostgres:
    return EmbeddedPostgres(
        data_dir,
        output,
        install_dir=home.install,
        cache_root=roots.cache,
        state_root=roots.state,
    )


@pytest.mark.integration
def test_postgres_runs_from_root_home_and_keeps_its_data_across_restarts(
    root_home: RootHome, roots: Roots
) -> None:
    data_dir = root_home.path / "wp" / ".waypost" / "postgres"
    log = roots.cache.parent / "postgres.log"

    with log.open("ab") as output:
        first = _server(data_dir, output, root_home, roots)
        try:
            first.start()
            assert first.process is not None
            binary = Path(psutil.Process(first.process.pid).exe())
            with psycopg.connect(first.url(), autocommit=True) as connection:
                connection.execute("CREATE TABLE kept (note text)")
                connection.execute("INSERT INTO kept VALUES ('written in the first run')")
        finally:
            first.stop()

    real = first.data_dir
    assert data_dir.is_symlink()
    assert data_dir.resolve() == real
    assert real.parent.parent == roots.state
    assert (real / "PG_VERSION").exists()
    assert roots.cache in binary.parents
    assert f"lives in {real} ({data_dir} is a symlink to it)" in log.read_text()

    with log.open("ab") as output:
        second = _server(data_dir, output, root_home, roots)
        try:
            second.start()
            with psycopg.connect(second.url()) as connection:
                rows = connection.execute("SELECT note FROM kept").fetchall()
        finally:
            second.stop()

    assert rows == [("written in the first run",)]
    assert second.data_dir == real
    # One complete copy of the binaries, reused; no half-made staging directory left.
    assert [p.name for p in roots.cache.iterdir()] == [binary.parents[3].name]
    assert (binary.parents[3] / "COMPLETE").exists()
    # Relocated, not opened up: the stand-in for /root is as private as before.
    assert root_home.path.stat().st_mode & 0o777 == 0o700


@pytest.mark.e2e
@pytest.mark.slow  # 15-20 s: `make test-slow` (CI runs it)
def test_waypost_up_starts_from_a_checkout_in_root_home(root_home: RootHome, roots: Roots) -> None:
    checkout = root_home.path / "wp"
    port = free_port()
    # `waypost up` as `make demo` runs it, with the pgserver wheel found in the private
    # directory first and the relocation roots pointed at the stand-ins.
    code = (
        "from pathlib import Path\n"
        "from waypost.stack import pgfiles\n"
        f"pgfiles.CACHE_ROOT = Path({str(roots.cache)!r})\n"
        f"pgfiles.STATE_ROOT = Path({str(roots.state)!r})\n"
        "from waypost.cli.main import main\n"
        f"main(['up', '--port', '{port}'])\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(root_home.site_packages),
        "WAYPOST_DATA_DIR": str(checkout / ".waypost"),
    }
    for name in ("WAYPOST_KAFKA_BOOTSTRAP", "WAYPOST_DATABASE_URL"):
        env.pop(name, None)  # start the embedded ones
    up = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert up.stdout is not None
        lines.extend(line.rstrip("\n") for line in up.stdout)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    family: list[psutil.Process] = []
    try:

        def running() -> bool:
            if up.poll() is not None:
                raise AssertionError("waypost up exited early:\n" + "\n".join(lines))
            return "Press Ctrl-C to stop." in lines

        wait_for(running, timeout=120, interval=0.2, what="waypost up to be running")
        family = psutil.Process(up.pid).children(recursive=True)
        binaries = {Path(p.exe()) for p in family if p.name() == "postgres"}
    finally:
        up.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            up.wait(90)
        finally:
            for process in family:
                if process.is_running():
                    process.kill()  # by PID: only what this waypost up started
            if up.poll() is None:
                up.kill()
                up.wait(10)
        reader.join(10)

    output = "\n".join(lines)
    assert up.returncode == 0, output
    data_dir = checkout / ".waypost" / "postgres"
    real = data_dir.resolve()
    assert data_dir.is_symlink()
    assert roots.state in real.parents
    assert (real / "PG_VERSION").exists()
    assert f"PostgreSQL   postgresql://postgres@/waypost?host={real} (embedded)" in output
    assert binaries
    assert all(roots.cache in binary.parents for binary in binaries), binaries
    assert [p for p in family if p.is_running() and p.status() != "zombie"] == []
    assert root_home.path.stat().st_mode & 0o777 == 0o700
