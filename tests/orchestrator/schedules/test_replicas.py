"""Issue 14: a schedule every 2 s fires each slot exactly once with two orchestrators'
loops running (each with its own connection pool and broker producer), and after both
stopped for more than 3 slots, one started again catches up per each policy.

The only waiting on time here is the schedules' own clock (bounded by wait_for)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.store import outbox
from tests.orchestrator.schedules.conftest import (
    add,
    fires,
    make_scheduler,
    schedule,
    workflow_ids,
)
from tests.waiting import wait_for
from waypost.bus.kafka import KafkaBus
from waypost.db import make_engine
from waypost.events import utcnow
from waypost.settings import OrchestratorSettings
from waypost.stack.broker import EmbeddedBroker
from waypost.stack.postgres import EmbeddedPostgres
from waypost.topics import Topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TWO = timedelta(seconds=2)
POLICIES: dict[str, Any] = {
    "all": "all",
    "one": "one",
    "skip": "skip",
    "bounded": {"bounded": 2},
}


@contextmanager
def orchestrators(
    count: int,
    *,
    postgres: EmbeddedPostgres,
    schema: str,
    bus: KafkaBus,
    playbooks: PlaybookRegistry,
    namespace: str,
) -> Iterator[None]:
    """``count`` firing loops, each as its own orchestrator would run it."""
    stop = threading.Event()
    engines: list[Engine] = []
    threads: list[threading.Thread] = []
    publishers = []
    for i in range(count):
        engine = make_engine(postgres.url(), schema=schema)
        publisher = bus.publisher(f"scheduler-{i}")
        scheduler = make_scheduler(
            engine,
            playbooks,
            namespace,
            utcnow,
            OutboxPublisher(engine, publisher),
            poll_interval_s=0.2,
        )
        thread = threading.Thread(target=scheduler.run, args=(stop,), name=f"scheduler-{i}")
        engines.append(engine)
        publishers.append(publisher)
        threads.append(thread)
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        for publisher in publishers:
            publisher.close()
        for engine in engines:
            engine.dispose()


def contiguous(slots: list[datetime]) -> bool:
    return all(b - a == TWO for a, b in itertools.pairwise(slots))


def test_two_orchestrators_fire_each_slot_once_and_one_catches_up_per_policy(
    engine: Engine,
    postgres: EmbeddedPostgres,
    schema: str,
    broker: EmbeddedBroker,
    make_settings: Callable[..., Any],
    namespace: str,
    playbooks: PlaybookRegistry,
) -> None:
    settings = make_settings(OrchestratorSettings, topic_partitions=1)
    bus = KafkaBus(broker.bootstrap, settings)
    bus.admin().ensure_topics(Topics(namespace).specs([], settings))
    for name, policy in POLICIES.items():
        add(engine, schedule(name, catch_up=policy), utcnow())
    run = {
        "postgres": postgres,
        "schema": schema,
        "bus": bus,
        "playbooks": playbooks,
        "namespace": namespace,
    }

    with orchestrators(2, **run):
        wait_for(
            lambda: all(len(fires(engine, name)) >= 5 for name in POLICIES),
            timeout=40,
            interval=0.2,
            what="5 slots of every schedule",
        )
    before = {name: fires(engine, name) for name in POLICIES}
    for name, fired in before.items():
        slots = [slot for slot, _, _ in fired]
        # One row per slot (its primary key), each with its own workflow, none lost.
        assert workflow_ids(engine, name) == sorted(w for _, _, w in fired if w)
        assert len(set(slots)) == len(slots) == len(workflow_ids(engine, name))
    all_slots = [slot for slot, _, _ in before["all"]]
    assert contiguous(all_slots), all_slots

    last = max(fired[-1][0] for fired in before.values())
    wait_for(
        lambda: utcnow() >= last + timedelta(seconds=9),
        timeout=15,
        interval=0.1,
        what="4 slots to pass with no orchestrator (3 missed, 1 on time at the restart)",
    )
    restarted = utcnow()
    with orchestrators(1, **run):
        wait_for(
            lambda: all(
                any(not late and slot >= restarted - TWO for slot, late, _ in fires(engine, n))
                for n in POLICIES
            ),
            timeout=30,
            interval=0.2,
            what="an on-time slot of every schedule after the restart",
        )
    for name, fired_before in before.items():
        stopped_at = fired_before[-1][0]
        after = [(slot, late) for slot, late, _ in fires(engine, name) if slot > stopped_at]
        on_time = [slot for slot, late in after if not late]
        missed_fired = [slot for slot, late in after if late]
        first = on_time[0]
        assert first - stopped_at >= timedelta(seconds=8), (name, after)  # >= 3 missed
        assert contiguous(on_time)
        expected = {
            "all": [stopped_at + TWO * i for i in range(1, (first - stopped_at) // TWO)],
            "one": [first - TWO],
            "bounded": [first - 2 * TWO, first - TWO],
            "skip": [],
        }[name]
        assert missed_fired == expected, (name, after)
        assert len(workflow_ids(engine, name)) == len(fires(engine, name))
    # Every goal reached the broker: the loops' publishers emptied the outbox.
    with engine.connect() as conn:
        assert outbox.backlog(conn) == 0
