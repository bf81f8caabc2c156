"""MCP tool-call overhead: Waypost's governed ``ctx.tools.call`` next to a bare SDK call.

For each transport (stdio, streamable HTTP), in the same run, a trivial ``echo`` tool
(this module's ``--serve`` mode: an ``MCPServer`` of the official ``mcp`` SDK that
returns its argument) is called one call at a time, N times, by:

- bare SDK: ``mcp.ClientSession.call_tool`` awaited in a loop, over the SDK's own
  ``stdio_client`` / ``streamable_http_client`` with their defaults;
- Waypost client: ``ToolClient.call`` (waypost/tools/client.py) from a handler thread:
  the synchronous API, the hop to the worker's tool event loop and back, the result
  turned into a ``ToolResult``; no governance;
- ``ctx.tools.call``: the task context the agent runtime builds
  (``waypost.runtime.running.task_context``) with the worker's toolbox
  (``waypost.tools.setup.open_toolbox``) and the governor a worker without a database
  uses (``MemoryGate`` over a policy file that allows the tool): the policy decision
  with its ``policy.decided`` event and decision-log line (written to /dev/null), the
  input-schema check, the span, the metrics and the reasoning-trace line; once with
  tracing off and once on (every span recorded, batched and encoded as OTLP protobuf
  by a ``BatchSpanProcessor``, then dropped instead of sent).

Over HTTP one server process serves every path. Over stdio a server belongs to the
client that starts it, so the bare session and Waypost's each start one, with the same
command. The calls are interleaved in rounds (each path in turn, order rotated) after a
warm-up, so drift on a shared machine hits every path alike; each call is timed as its
caller sees it. Every result is checked (the echoed text, an ``ok`` trace line).

Options: --calls N (default 2000), --transport stdio|http|both, --rounds R.
Prints progress on stderr, one table per transport (microseconds per call, ratio and
overhead against the bare SDK call) on stdout, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from waypost import AgentContext, agent
from waypost.events import TaskDispatched
from waypost.governance import MemoryGate, PolicySet
from waypost.runtime.running import task_context
from waypost.settings import AgentSettings
from waypost.stack.process import free_port, spawn, stop
from waypost.telemetry import NO_TRACING, Tracing
from waypost.telemetry.logs import TextFormatter
from waypost.telemetry.tracing import DerivedIds
from waypost.tools.client import ToolClient
from waypost.tools.governed import Toolbox
from waypost.tools.metrics import ToolMetrics
from waypost.tools.setup import close_toolbox, open_toolbox

ROOT = Path(__file__).resolve().parents[1]
Transport = Literal["stdio", "http"]
SERVERS: dict[Transport, str] = {"stdio": "echo-stdio", "http": "echo-http"}
CAPABILITY = "bench-mcp"
ARGUMENTS = {"text": "ping"}
# The worker's default: how often it looks at policy and tool files again.
CHECK_INTERVAL_S = AgentSettings.model_fields["policy_check_interval_s"].default
ROWS = {
    "bare": "bare SDK: ClientSession.call_tool",
    "client": "Waypost ToolClient.call (no governance)",
    "governed": "Waypost ctx.tools.call, tracing off",
    "traced": "Waypost ctx.tools.call, tracing on",
}
INCLUDED = (
    "ctx.tools.call includes: MemoryGate policy decision (a worker without a database; "
    "with one, Gate also writes an audit row per call), policy.decided event, "
    "decision-log line (text format, to /dev/null), input-schema check, span (a no-op "
    "with tracing off), Prometheus metrics, reasoning-trace line; tracing on: every span "
    "recorded, batched and encoded as OTLP protobuf, not sent"
)


class Ping(BaseModel):
    text: str


@agent(CAPABILITY, version="bench")
def bench_mcp(ping: Ping, ctx: AgentContext) -> Ping:
    """The agent whose task contexts the bench builds (the bench calls the tool itself)."""
    return ping


# --- the server --------------------------------------------------------------------


def serve(transport: Transport, port: int) -> None:
    """Run the echo server over stdio, or streamable HTTP on ``port`` (until killed)."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("waypost-bench-echo")

    @server.tool()
    def echo(text: str) -> str:
        """Return ``text``."""
        return text

    if transport == "http":
        import uvicorn

        uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")
    else:
        server.run()


SERVE_ARGS = ["-m", "bench.mcp_overhead", "--serve"]
SERVE_ENV = {"PYTHONPATH": str(ROOT)}  # so that `-m bench...` works from any directory


@contextmanager
def http_server(logdir: Path) -> Iterator[str]:
    """The echo server over streamable HTTP on a free port; its URL. Stopped by PID."""
    port = free_port()
    log = (logdir / "mcp-overhead-http.log").open("wb")
    process = spawn(
        [sys.executable, *SERVE_ARGS, "http", "--port", str(port)],
        log=log,
        env={**os.environ, **SERVE_ENV},
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the HTTP echo server exited; see {log.name}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP echo server did not listen within 30 s; {log.name}")
            time.sleep(0.05)  # polling a port another process opens: nothing to wait on
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop(process, timeout=10)
        log.close()


# --- the bare SDK ------------------------------------------------------------------


@asynccontextmanager
async def bare_session(transport: Transport, url: str | None) -> AsyncIterator[Any]:
    """A ``ClientSession`` of the SDK, initialized, over its own transport defaults."""
    from mcp import ClientSession

    async with AsyncExitStack() as stack:
        if transport == "stdio":
            from mcp.client.stdio import StdioServerParameters, stdio_client

            parameters = StdioServerParameters(
                command=sys.executable, args=[*SERVE_ARGS, "stdio"], env=SERVE_ENV
            )
            read, write = await stack.enter_async_context(stdio_client(parameters))
        else:
            from mcp.client.streamable_http import streamable_http_client

            assert url is not None
            streams = await stack.enter_async_context(streamable_http_client(url))
            read, write = streams[0], streams[1]
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        yield session


async def bare_calls(session: Any, count: int) -> list[int]:
    """Nanoseconds of ``count`` sequential SDK calls."""
    took: list[int] = []
    for _ in range(count):
        started = time.perf_counter_ns()
        answer = await session.call_tool("echo", ARGUMENTS)
        took.append(time.perf_counter_ns() - started)
        if answer.is_error or answer.content[0].text != ARGUMENTS["text"]:
            raise RuntimeError(f"bare SDK: unexpected answer {answer!r}")
    return took


# --- Waypost -----------------------------------------------------------------------


class _EncodeAndDrop(SpanExporter):
    """Encodes each batch as an OTLP exporter would, then drops it (no receiver)."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Encode ``spans`` to OTLP protobuf bytes and count them."""
        encode_spans(spans).SerializeToString()
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


@dataclass
class Waypost:
    """What a worker process holds: its toolbox (one ``ToolClient``) and governor."""

    toolbox: Toolbox
    governor: MemoryGate
    tracing: Tracing
    exported: _EncodeAndDrop

    @property
    def client(self) -> ToolClient:
        """The toolbox's client."""
        assert isinstance(self.toolbox.client, ToolClient)
        return self.toolbox.client


@contextmanager
def waypost_worker(workdir: Path, url: str | None) -> Iterator[Waypost]:
    """A worker's toolbox (the echo server over stdio, and over HTTP at ``url``), its
    governor (a policy allowing both echo tools) and a tracer provider."""
    tools, policies = workdir / "tools", workdir / "policies"
    tools.mkdir()
    policies.mkdir()
    servers: dict[str, Any] = {
        SERVERS["stdio"]: {
            "command": sys.executable,
            "args": [*SERVE_ARGS, "stdio"],
            "env": SERVE_ENV,
            "timeout": "30s",
        }
    }
    if url is not None:
        servers[SERVERS["http"]] = {"url": url, "timeout": "30s"}
    (tools / "bench.yaml").write_text(json.dumps({"servers": servers}, indent=2))  # JSON is YAML
    allowed = ", ".join(f"mcp:{name}/echo" for name in SERVERS.values())
    (policies / "bench.yaml").write_text(
        f"name: bench-mcp\nversion: 1\napplies_to: {{agents: [{CAPABILITY}]}}\n"
        f"actions:\n  allow: [{allowed}]\n"
    )
    toolbox = open_toolbox(
        [tools],
        check_interval_s=CHECK_INTERVAL_S,
        environ=os.environ,
        metrics=ToolMetrics(CollectorRegistry()),
    )
    assert toolbox is not None
    governor = MemoryGate(PolicySet([policies], check_interval_s=CHECK_INTERVAL_S))
    provider = TracerProvider(id_generator=DerivedIds())
    exported = _EncodeAndDrop()
    provider.add_span_processor(BatchSpanProcessor(exported))
    try:
        yield Waypost(toolbox, governor, Tracing(provider), exported)
    finally:
        close_toolbox(toolbox)
        provider.shutdown()


def client_calls(worker: Waypost, server: str, count: int) -> list[int]:
    """Nanoseconds of ``count`` sequential ``ToolClient.call`` calls (no governance)."""
    took: list[int] = []
    for _ in range(count):
        started = time.perf_counter_ns()
        result = worker.client.call(server, "echo", ARGUMENTS)
        took.append(time.perf_counter_ns() - started)
        if result.is_error or result.text != ARGUMENTS["text"]:
            raise RuntimeError(f"Waypost client: unexpected result {result!r}")
    return took


def governed_calls(worker: Waypost, server: str, count: int, *, traced: bool) -> list[int]:
    """Nanoseconds of ``count`` sequential ``ctx.tools.call`` calls of one task."""
    tracing = worker.tracing if traced else NO_TRACING
    number = time.perf_counter_ns()
    task = TaskDispatched(
        workflow_id=f"wf-{number}",
        task_id=f"task-{number}",
        step="call",
        capability=CAPABILITY,
        attempt=1,
        goal_type="bench.mcp",
        input=ARGUMENTS,
        deadline=(datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    )
    ctx = task_context(
        bench_mcp,
        task,
        datetime.now(UTC) + timedelta(hours=1),
        resources={},
        memory=None,
        governor=worker.governor,
        toolbox=worker.toolbox,
        tracing=tracing,
    )
    tools = ctx.tools
    assert tools is not None
    took: list[int] = []
    # As in the runtime, the calls' spans are children of the task's ``process`` span.
    with tracing.processing(f"bench.tasks.{CAPABILITY}", traceparent=None):
        for _ in range(count):
            started = time.perf_counter_ns()
            result = tools.call(server, "echo", ARGUMENTS)
            took.append(time.perf_counter_ns() - started)
            if result.is_error or result.text != ARGUMENTS["text"]:
                raise RuntimeError(f"ctx.tools.call: unexpected result {result!r}")
    if len(ctx.notes) != count or not all(note.endswith(": ok") for note in ctx.notes):
        raise RuntimeError(f"ctx.tools.call: unexpected reasoning trace {ctx.notes[:3]!r}")
    return took


# --- measuring ---------------------------------------------------------------------


def warm_up_calls(calls: int) -> int:
    """Calls per path before the measured ones: a tenth, at least 10, at most 100."""
    return min(100, max(10, calls // 10))


def shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal positive counts."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def measure(
    transport: Transport, url: str | None, worker: Waypost, calls: int, rounds: int
) -> dict[str, list[int]]:
    """Every path's per-call nanoseconds over ``transport``, interleaved in rounds."""
    server = SERVERS[transport]
    loop = asyncio.get_running_loop()
    # Handlers are synchronous and run in a thread of their own: so do Waypost's calls.
    with ThreadPoolExecutor(1, thread_name_prefix="handler") as handler:
        async with bare_session(transport, url) as session:
            paths: dict[str, Callable[[int], Any]] = {
                "bare": lambda n: bare_calls(session, n),
                "client": lambda n: loop.run_in_executor(handler, client_calls, worker, server, n),
                "governed": lambda n: loop.run_in_executor(
                    handler, lambda: governed_calls(worker, server, n, traced=False)
                ),
                "traced": lambda n: loop.run_in_executor(
                    handler, lambda: governed_calls(worker, server, n, traced=True)
                ),
            }
            warm_up = warm_up_calls(calls)
            print(f"{transport}: warm-up, {warm_up} calls per path ...", file=sys.stderr)
            for run in paths.values():
                await run(warm_up)  # connects, starts Waypost's stdio server, warms caches
            names = list(paths)
            took: dict[str, list[int]] = {name: [] for name in names}
            counts = shares(calls, rounds)
            for index, count in enumerate(counts):
                turn = index % len(names)
                for name in names[turn:] + names[:turn]:
                    took[name] += await paths[name](count)
                print(
                    f"{transport}: round {index + 1}/{len(counts)} done "
                    f"({sum(counts[: index + 1])} calls per path)",
                    file=sys.stderr,
                )
    return took


def summary(nanos: list[int]) -> dict[str, float]:
    """p50, p95 and mean in microseconds."""
    micros = [n / 1000 for n in nanos]
    p95 = statistics.quantiles(micros, n=20)[-1] if len(micros) > 1 else micros[0]
    found = {"p50": statistics.median(micros), "p95": p95, "mean": statistics.fmean(micros)}
    return {key: round(value, 1) for key, value in found.items()}


def table(transport: Transport, stats: dict[str, dict[str, float]], calls: int) -> None:
    """One transport's rows: figures, then ratio and overhead against the bare call."""
    bare = stats["bare"]
    print(
        f"{transport + ', µs per call':<44}{'n':>6}{'p50':>9}{'p95':>9}{'mean':>9}"
        f"{'x p50':>8}{'x mean':>8}{'+p50 µs':>10}{'+mean µs':>10}"
    )
    for name, found in stats.items():
        figures = "".join(f"{found[key]:>9.1f}" for key in ("p50", "p95", "mean"))
        ratios = f"{found['p50'] / bare['p50']:>8.2f}{found['mean'] / bare['mean']:>8.2f}"
        extra = f"{found['p50'] - bare['p50']:>10.1f}{found['mean'] - bare['mean']:>10.1f}"
        print(f"{ROWS[name]:<44}{calls:>6}{figures}{ratios}{extra}")


def decision_log() -> logging.Handler:
    """Decision lines formatted as a worker at INFO writes them, to /dev/null."""
    handler = logging.FileHandler(os.devnull)
    handler.setFormatter(TextFormatter("bench-mcp"))
    decisions = logging.getLogger("waypost.decisions")
    decisions.setLevel(logging.INFO)
    decisions.propagate = False
    decisions.addHandler(handler)
    return handler


def main() -> None:
    """Measure every path over each transport; print the tables and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per path and transport")
    parser.add_argument(
        "--transport", choices=["stdio", "http", "both"], default="both", help="which to measure"
    )
    parser.add_argument(
        "--rounds", type=int, default=10, help="interleaving rounds (each path in turn)"
    )
    parser.add_argument("--logs", type=Path, default=ROOT / ".bench", help="server log")
    parser.add_argument(
        "--serve",
        choices=["stdio", "http"],
        help="run the echo server the bench calls, and nothing else (the bench starts it)",
    )
    parser.add_argument("--port", type=int, default=0, help="the port of --serve http")
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.port)
        return
    if args.calls < 1 or args.rounds < 1:
        parser.error("--calls and --rounds must be at least 1")
    args.logs.mkdir(parents=True, exist_ok=True)
    transports: list[Transport] = (
        ["stdio", "http"] if args.transport == "both" else [args.transport]
    )
    results, spans = run(transports, args.calls, args.rounds, args.logs)
    report: dict[str, Any] = {"calls": args.calls, "rounds": args.rounds}
    for transport, stats in results.items():
        table(transport, stats, args.calls)
        print()
        report.update(figures(transport, stats))
    print(INCLUDED)
    # Each traced task: its process span and one span per call (none may be dropped).
    traced = warm_up_calls(args.calls) + args.calls + 1 + len(shares(args.calls, args.rounds))
    report["spans_exported"] = spans
    report["spans_expected"] = traced * len(transports)
    print(f"spans exported with tracing on: {spans} of {traced * len(transports)}")
    report["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]  # shared?
    print(json.dumps(report))


def run(
    transports: list[Transport], calls: int, rounds: int, logdir: Path
) -> tuple[dict[Transport, dict[str, dict[str, float]]], int]:
    """Each transport's figures by path, and how many spans were exported."""
    handler = decision_log()
    results: dict[Transport, dict[str, dict[str, float]]] = {}
    try:
        with (
            tempfile.TemporaryDirectory(prefix="waypost-bench-mcp-") as workdir,
            http_server(logdir) if "http" in transports else _nothing() as url,
        ):
            with waypost_worker(Path(workdir), url) as worker:
                for transport in transports:
                    took = asyncio.run(measure(transport, url, worker, calls, rounds))
                    results[transport] = {name: summary(nanos) for name, nanos in took.items()}
            return results, worker.exported.spans  # every span flushed by the shutdown
    finally:
        logging.getLogger("waypost.decisions").removeHandler(handler)
        handler.close()


def figures(transport: Transport, stats: dict[str, dict[str, float]]) -> dict[str, float]:
    """The JSON figures of one transport: each path's, its ratios and overheads."""
    bare = stats["bare"]
    found: dict[str, float] = {}
    for name, row in stats.items():
        found.update({f"{transport}_{name}_{key}_us": row[key] for key in ("p50", "p95", "mean")})
        if name == "bare":
            continue
        for key in ("p50", "mean"):
            found[f"{transport}_{name}_ratio_{key}"] = round(row[key] / bare[key], 2)
            found[f"{transport}_{name}_overhead_{key}_us"] = round(row[key] - bare[key], 1)
    return found


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    main()
