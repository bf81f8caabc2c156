"""Fixtures of the tool tests: the SDK test server over stdio and over streamable HTTP
(a uvicorn process on a free port, stopped by its PID), and their server files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.waiting import wait_for
from waypost.stack.process import free_port

SERVER = Path(__file__).resolve().parents[2] / "support" / "mcp_server.py"


@dataclass
class Calls:
    """The file the test server appends ``<tool> <pid>`` to on every call."""

    path: Path

    def of(self, tool: str) -> list[int]:
        """The PIDs of the server processes that ran ``tool``, in call order."""
        if not self.path.exists():
            return []
        lines = [line.split() for line in self.path.read_text().splitlines()]
        return [int(pid) for name, pid in lines if name == tool]


@pytest.fixture
def calls(tmp_path: Path) -> Calls:
    return Calls(tmp_path / "calls.txt")


@pytest.fixture
def http_url(calls: Calls) -> Iterator[str]:
    """The test server over streamable HTTP; stopped (by PID) when the test ends."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER), str(calls.path), "--http", str(port)],
        stdout=subprocess.DEVNULL,
    )

    def listening() -> bool:
        assert process.poll() is None, "the MCP test server exited"
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, timeout=20, what="the MCP test server to listen")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)


def server_file(
    directory: Path, calls: Calls, *, http_url: str | None = None, timeout: str = "10s"
) -> Path:
    """Write ``tools.yaml`` with the stdio server ``local`` (and ``web`` over HTTP)."""
    directory.mkdir(parents=True, exist_ok=True)
    text = (
        "servers:\n"
        "  local:\n"
        f"    command: {sys.executable}\n"
        f"    args: [{str(SERVER)!r}, {str(calls.path)!r}]\n"
        f"    timeout: {timeout}\n"
    )
    if http_url is not None:
        text += f"  web:\n    url: {http_url}\n    timeout: {timeout}\n"
    (directory / "tools.yaml").write_text(text)
    return directory
