"""What every benchmark needs: the embedded stack, Waypost processes, the raw baseline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from waypost.db import make_engine
from waypost.migrate import upgrade
from waypost.stack.broker import EmbeddedBroker, tansu_binary
from waypost.stack.postgres import EmbeddedPostgres
from waypost.stack.process import free_port, spawn, stop

ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 4


@dataclass
class Stack:
    """A running embedded broker and PostgreSQL."""

    bootstrap: str
    database_url: str
    workdir: Path


@contextmanager
def embedded_stack() -> Iterator[Stack]:
    """Start Tansu and PostgreSQL in a temporary directory; stop both afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="waypost-bench-", dir="/tmp"))
    workdir.chmod(0o755)
    broker = EmbeddedBroker(tansu_binary(None), free_port(), None)
    postgres = EmbeddedPostgres(workdir / "postgres", None)
    try:
        broker.start()
        postgres.start()
        yield Stack(broker.bootstrap, postgres.url(), workdir)
    finally:
        postgres.stop()
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def unique(prefix: str) -> str:
    """A fresh name for topics, groups and schemas."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def migrate_schema(stack: Stack, schema: str) -> None:
    """Create and migrate a schema."""
    engine = make_engine(stack.database_url, schema=schema, pool_size=1)
    try:
        upgrade(engine, schema)
    finally:
        engine.dispose()


def waypost_env(stack: Stack, *, namespace: str, schema: str, **extra: str) -> dict[str, str]:
    """Environment for Waypost processes of one benchmark installation."""
    env = dict(os.environ)
    env.update(
        {
            "WAYPOST_KAFKA_BOOTSTRAP": stack.bootstrap,
            "WAYPOST_DATABASE_URL": stack.database_url,
            "WAYPOST_DATABASE_SCHEMA": schema,
            "WAYPOST_NAMESPACE": namespace,
            "WAYPOST_DATA_DIR": str(stack.workdir),
            "WAYPOST_KAFKA_SESSION_TIMEOUT_MS": "3000",
            "WAYPOST_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **extra,
        }
    )
    return env


@contextmanager
def processes(
    commands: Sequence[tuple[str, Sequence[str]]], env: dict[str, str], logdir: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Run `python ARGS...` children (logs in logdir); stop them by PID afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for name, args in commands:
            log = (logdir / f"{name}.log").open("wb")
            started.append(spawn([sys.executable, *args], log=log, env=env, cwd=ROOT))
        yield started
    finally:
        for process in reversed(started):
            stop(process, timeout=20)


def create_topics(bootstrap: str, names: Sequence[str], partitions: int = PARTITIONS) -> None:
    """Create topics explicitly (never rely on auto-create)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
    ).values():
        future.result()


def producer(bootstrap: str) -> Producer:
    """A producer configured like Waypost's."""
    return Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5}
    )


class Sink:
    """Counts records arriving on a topic (a consumer group of its own)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": unique("sink-"),
                # The topics are fresh: reading from the start misses nothing.
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "session.timeout.ms": 3000,
                "heartbeat.interval.ms": 750,
                "fetch.wait.max.ms": 100,
            }
        )
        self._consumer.subscribe([topic])
        self._seen = 0

    def wait_for(
        self, total: int, timeout_s: float, header: tuple[str, bytes] | None = None
    ) -> float:
        """Block until ``total`` matching records arrived in all; returns the arrival time."""
        deadline = time.monotonic() + timeout_s
        while self._seen < total:
            for message in self._consumer.consume(1000, 0.2):
                if message.error() is not None:
                    continue
                if header is None or header in (message.headers() or []):
                    self._seen += 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self._seen} of {total} records in {timeout_s} s")
        return time.monotonic()

    def close(self) -> None:
        """Leave the group."""
        self._consumer.close()


class Arrivals:
    """Records arriving on a topic, each under a label, for latency: a consumer group of
    its own that takes record by record (``consume(N, t)``, as ``Sink`` uses it, waits
    all of ``t`` unless N records arrive)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        label: Callable[[Message], tuple[str, str] | None],
        fetch_wait_ms: int = 100,
    ) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": unique("arrivals-"),
                "auto.offset.reset": "earliest",  # fresh topics: nothing is missed
                "enable.auto.commit": False,
                "fetch.wait.max.ms": fetch_wait_ms,
            }
        )
        self._consumer.subscribe([topic])
        self._label = label  # (key, what to remember) of a record, or None to skip it
        self._seen: dict[str, str] = {}

    def wait(self, key: str, timeout_s: float) -> str:
        """Block until a record labelled ``key`` arrived; what its label said."""
        deadline = time.monotonic() + timeout_s
        while key not in self._seen:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{key} did not arrive within {timeout_s} s")
            message = self._consumer.poll(0.05)
            if message is not None and message.error() is None:
                found = self._label(message)
                if found is not None:
                    self._seen[found[0]] = found[1]
        return self._seen.pop(key)

    def close(self) -> None:
        """Leave the group."""
        self._consumer.close()


def raw_pipeline_rate(stack: Stack, count: int, logdir: Path) -> float:
    """Messages per second through produce -> consume -> produce -> consume."""
    source, target = unique("raw-in-"), unique("raw-out-")
    create_topics(stack.bootstrap, [source, target])
    sink = Sink(stack.bootstrap, target)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    echo = [
        ("raw-echo", ["-m", "bench.raw_echo", stack.bootstrap, source, target, unique("raw-echo-")])
    ]
    with processes(echo, env, logdir):
        out = producer(stack.bootstrap)
        out.produce(source, key=b"warm-up", value=b"{}")  # the echo group joins first
        out.flush()
        sink.wait_for(1, 60)
        started = time.monotonic()
        for i in range(count):
            out.produce(source, key=str(i).encode(), value=b'{"n": %d}' % i)
            if i % 1000 == 0:
                out.poll(0)
        out.flush()
        finished = sink.wait_for(count + 1, 300)
    sink.close()
    return count / (finished - started)


def wait_for_topic(stack: Stack, topic: str, creator: str) -> None:
    """Block until ``topic`` exists (``creator`` provisions it; its log says why not)."""
    admin = AdminClient({"bootstrap.servers": stack.bootstrap})
    deadline = time.monotonic() + 60
    while topic not in admin.list_topics(timeout=5).topics:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{topic} was not created; see the {creator} log")
        time.sleep(0.1)


def timed_rate(
    send: Callable[[int], None],
    out: Producer,
    sink: Sink,
    count: int,
    header: tuple[str, bytes],
) -> float:
    """Messages per second: ``send(-1)`` warms up (every group has joined once its
    answer arrives), then ``count`` sends are timed until their answers all arrived."""
    send(-1)
    out.flush()
    sink.wait_for(1, 120, header)
    started = time.monotonic()
    for n in range(count):
        send(n)
        if n % 1000 == 0:
            out.poll(0)
    out.flush()
    finished = sink.wait_for(count + 1, 600, header)
    sink.close()
    return count / (finished - started)
