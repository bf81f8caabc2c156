"""Real MQTT and NATS brokers for bridge tests: Debian's mosquitto and nats-server,
started on free ports with their data in the test's directory, stopped by PID, and
restartable on the same port and data (so queued messages survive)."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.waiting import wait_for
from waypost.stack.process import free_port, spawn, stop

MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
NATS_SERVER = shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ServerProcess:
    """A broker process that can be stopped and started again on the same port/data."""

    argv: list[str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = field(default=None)

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        with self.log.open("ab") as log:
            self.process = spawn(self.argv, log=log)
        wait_for(lambda: _listening(self.port), timeout=20, what=f"{self.argv[0]} listening")

    def stop(self) -> None:
        """SIGTERM it by PID (a clean shutdown: it saves what it holds)."""
        if self.process is not None:
            stop(self.process, timeout=20)
            self.process = None

    def restart(self) -> None:
        """Stop it and start it again on the same port and data directory."""
        self.stop()
        self.start()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[ServerProcess]:
    """A mosquitto of this test's own, persistence on (QoS 1 sessions survive a restart)."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    port = free_port()
    data = tmp_path / "mosquitto"
    data.mkdir()
    config = data / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        # Run as root, mosquitto would switch to its own user, who cannot write here.
        f"user {getpass.getuser()}\n"
        "persistence true\n"
        f"persistence_location {data}/\n"
        "autosave_interval 1\n"
        "max_queued_messages 100000\n"
    )
    server = ServerProcess([MOSQUITTO, "-c", str(config)], port, tmp_path / "mosquitto.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A nats-server with JetStream (file storage in this test's directory)."""
    if NATS_SERVER is None:
        pytest.skip("nats-server is not installed (apt-get install nats-server)")
    port = free_port()
    data = tmp_path / "nats"
    data.mkdir()
    argv = [NATS_SERVER, "-js", "-sd", str(data), "-a", "127.0.0.1", "-p", str(port)]
    server = ServerProcess(argv, port, tmp_path / "nats.log")
    server.start()
    yield server
    server.stop()
