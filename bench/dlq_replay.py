"""Dead-letter replay throughput: 1,000 dead letters replayed by one filter in one command.

On the embedded broker and PostgreSQL: publishes dead letters (goal.submitted records
with ``waypost-dlq-*`` headers) to ``<namespace>.goals.dlq``, lets the real indexer
store them, serves the HTTP app, and runs

    waypost dlq replay --filter "error=BenchError" --rate unlimited

as a separate process, timing it until every replayed record arrived on the goals topic.
A second batch replayed at ``--rate 500/s`` shows the rate limit holds. The raw Kafka
baseline is the same number of records produced with confluent-kafka and read back, in
the same run. Goal: >= 1,000 msg/s with the rate limit lifted. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import uvicorn
from sqlalchemy import Engine

from bench.harness import ROOT, Sink, Stack, embedded_stack, migrate_schema, producer, unique
from orchestrator.dead_letters.indexer import consumer
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.store import dead_letters as index
from orchestrator.store.dead_letters import DeadLetterFilter
from review_ui.app import create_app
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from waypost.bus.dead_letters import HEADER_PREFIX
from waypost.bus.kafka import KafkaBus
from waypost.bus.records import OutgoingRecord
from waypost.db import make_engine
from waypost.events import Event, GoalSubmitted, default_codec
from waypost.settings import HttpSettings, IndexerSettings
from waypost.stack.process import free_port
from waypost.topics import Topics


def publish_dead_letters(bus: KafkaBus, topics: Topics, count: int, error: str) -> None:
    """``count`` dead letters of valid goals, as the orchestrator's consumer writes them."""
    codec = default_codec()
    records = []
    for n in range(count):
        encoded = codec.encode(
            Event(GoalSubmitted(type="bench.none", input={"n": n}), source="bench")
        )
        failure = (
            (f"{HEADER_PREFIX}source-topic", topics.goals.encode()),
            (f"{HEADER_PREFIX}error-class", error.encode()),
            (f"{HEADER_PREFIX}error-message", b"benchmark failure"),
            (f"{HEADER_PREFIX}attempts", b"3"),
        )
        records.append(
            OutgoingRecord(
                topics.dlq(topics.goals), encoded.key, encoded.value, encoded.headers + failure
            )
        )
    publisher = bus.publisher("bench")
    for start in range(0, count, 500):
        publisher.send(records[start : start + 500]).raise_for_failures()
    publisher.close()


def indexed(engine: Engine, namespace: str, count: int, timeout_s: float = 120) -> float:
    """Wait until ``count`` dead letters are stored; returns the time it took."""
    started = time.monotonic()
    while True:
        with engine.connect() as conn:
            stored = index.count(conn, DeadLetterFilter(status=None), namespace)
        if stored >= count:
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"only {stored} of {count} dead letters indexed")
        time.sleep(0.05)


def raw_rate(stack: Stack, topic: str, count: int) -> float:
    """Records per second produced with confluent-kafka and read back."""
    sink = Sink(stack.bootstrap, topic)
    out = producer(stack.bootstrap)
    out.produce(topic, key=b"warm-up", value=b"{}")
    out.flush()
    sink.wait_for(1, 60)
    started = time.monotonic()
    for n in range(count):
        out.produce(topic, key=str(n).encode(), value=b'{"n": %d}' % n)
        if n % 1000 == 0:
            out.poll(0)
    out.flush()
    finished = sink.wait_for(count + 1, 120)
    sink.close()
    return count / (finished - started)


def replay_rate(
    stack: Stack, url: str, token: str, topic: str, error: str, count: int, rate: str
) -> tuple[float, float, float, dict[str, int]]:
    """Run `waypost dlq replay` once. Returns msg/s from the request's acceptance until
    the last record arrived, msg/s as the server recorded it (accepted to done), the
    command's wall time in seconds (Python start-up included), and the counts."""
    sink = Sink(stack.bootstrap, topic)
    warm_up = producer(stack.bootstrap)
    warm_up.produce(topic, key=b"warm-up", value=b"{}")  # the sink's group has joined
    warm_up.flush()
    sink.wait_for(1, 60)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "WAYPOST_HTTP_URL": url,
        "WAYPOST_API_TOKEN": token,
    }
    command = [
        sys.executable,
        "-m",
        "waypost",
        "dlq",
        "replay",
        "--filter",
        f"error={error}",
        "--rate",
        rate,
        "--json",
    ]
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"waypost dlq replay failed: {done.stdout}{done.stderr}")
    state = json.loads(done.stdout)
    sink.wait_for(count, 120, header=("waypost-replay-request", state["id"].encode()))
    arrived_wall, arrived = time.time(), time.monotonic()
    sink.close()
    created = datetime.fromisoformat(state["created_at"]).astimezone(UTC)
    finished = datetime.fromisoformat(state["finished_at"]).astimezone(UTC)
    server_s = max((finished - created).total_seconds(), 1e-6)
    delivered_s = max(arrived_wall - created.timestamp(), 1e-6)
    return count / delivered_s, count / server_s, arrived - started, state["counts"]


def main() -> None:
    """Seed, index, replay, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dead-letters", type=int, default=1000)
    args = parser.parse_args()
    count = args.dead_letters
    with embedded_stack() as stack:
        schema, namespace = unique("bench_"), unique("bench")
        migrate_schema(stack, schema)
        topics = Topics(namespace)
        settings = HttpSettings(
            kafka_bootstrap=stack.bootstrap,
            database_url=stack.database_url,
            database_schema=schema,
            namespace=namespace,
            http_port=free_port(),
        )
        bus = KafkaBus(stack.bootstrap, settings)
        bus.admin().ensure_topics(topics.specs([], settings))
        engine = make_engine(stack.database_url, schema=schema, pool_size=10)
        stop = threading.Event()
        indexer = consumer(
            IndexerSettings(**settings.model_dump(include=set(IndexerSettings.model_fields))),
            bus=bus,
            engine=engine,
            stop=stop,
        )
        threading.Thread(target=indexer.run, daemon=True).start()
        publish_dead_letters(bus, topics, count, "BenchError")
        publish_dead_letters(bus, topics, count, "BenchLimited")
        index_s = indexed(engine, namespace, 2 * count)
        print(f"indexed {2 * count} dead letters in {index_s:.2f} s", file=sys.stderr)

        with engine.begin() as conn:
            token, _ = auth_store.create_token(conn, name="bench", role=Role.ANALYST)
        app = create_app(
            settings,
            engine=engine,
            admin=bus.admin(),
            playbooks=PlaybookRegistry.load([]),
            publisher=bus.publisher("http"),
        )
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=settings.http_port, log_level="warning")
        )
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{settings.http_port}"
        try:
            raw = raw_rate(stack, unique("raw-"), count)
            rate, server_side, command_s, counts = replay_rate(
                stack, url, token, topics.goals, "BenchError", count, "unlimited"
            )
            limited, limited_server, _, _ = replay_rate(
                stack, url, token, topics.goals, "BenchLimited", count, "500/s"
            )
        finally:
            server.should_exit = True
            stop.set()
    report = {
        "dead_letters": count,
        "indexed_per_s": round(2 * count / index_s),
        "replay_unlimited_per_s": round(rate),
        "replay_unlimited_server_per_s": round(server_side),
        "command_wall_s": round(command_s, 2),
        "replay_at_500_per_s": round(limited),
        "replay_at_500_server_per_s": round(limited_server),
        "raw_kafka_per_s": round(raw),
        "ratio_to_raw": round(rate / raw, 3),
        "counts": counts,
        "goal_met": rate >= 1000,
    }
    print(
        f"replayed {count} by one filter in one command: {rate:,.0f} msg/s from request to "
        f"last arrival ({server_side:,.0f} msg/s server-side; the whole command took "
        f"{command_s:.2f} s with Python start-up); at --rate 500/s: {limited:,.0f} msg/s; "
        f"raw Kafka produce+consume: {raw:,.0f} msg/s; ratio {rate / raw:.3f}; "
        f"goal >= 1,000 msg/s: {'met' if rate >= 1000 else 'NOT met'}",
        file=sys.stderr,
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
