"""Agent workers on the real broker: concurrency with per-key order, a handler slower than
``max.poll.interval.ms``, and graceful shutdown.

Each test runs ``serve`` (what `waypost agent run` runs) in a thread, on task topics of
one partition, so that the order in which tasks are committed is the order in which
they were dispatched. Handlers sleep only to be slow; the tests wait for conditions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from tests.waiting import wait_for
from tests.waypost.runtime.harness import AgentRun, payloads, task_ids
from tests.waypost.runtime.test_concurrency import Tracker
from waypost import AgentContext, agent
from waypost.bus.kafka import KafkaSubscriber
from waypost.events import TaskCompleted
from waypost.runtime.main import assemble
from waypost.settings import AgentSettings

pytestmark = pytest.mark.integration

MAX_POLL_INTERVAL_MS = 6000
SLOWER_THAN_MAX_POLL_S = 8.0


class Work(BaseModel):
    sleep_s: float = 0.0


class Done(BaseModel):
    ok: bool = True


@pytest.fixture
def run_agents(make_settings: Callable[..., Any]) -> Iterator[Callable[..., AgentRun]]:
    """Start agents with this test's broker, database and namespace; stopped afterwards."""
    runs: list[AgentRun] = []

    def start(*agents: Any, **overrides: Any) -> AgentRun:
        settings = make_settings(
            AgentSettings, topic_partitions=1, agent_heartbeat_interval_s=0.5, **overrides
        )
        run = AgentRun(settings, agents)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set when the test ends, so a handler left blocked on it returns."""
    event = threading.Event()
    yield event
    event.set()


def test_concurrent_tasks_run_side_by_side_but_each_key_in_order(
    run_agents: Callable[..., AgentRun],
) -> None:
    tracker = Tracker()

    @agent("parallel", concurrency=4)
    def parallel(task: Work, ctx: AgentContext) -> Done:
        tracker.enter(ctx)
        try:
            time.sleep(task.sleep_s)
        finally:
            tracker.leave(ctx)
        return Done()

    run = run_agents(parallel)
    tasks = [(f"k{key}", attempt) for attempt in (1, 2, 3) for key in range(4)]
    run.dispatch("parallel", *((task_id, n, {"sleep_s": 0.3}) for task_id, n in tasks))
    run.start()

    results = run.results(len(tasks))
    assert run.finish() == 0

    completed = payloads(results, TaskCompleted)
    assert sorted((r.task_id, r.attempt) for r in completed) == sorted(tasks)
    assert tracker.same_key_overlaps == 0
    for key in range(4):
        assert [n for task_id, n in tracker.order if task_id == f"k{key}"] == [1, 2, 3]
    assert 1 < tracker.most <= 4
    assert run.leftovers("parallel") == []  # the whole batch was committed


@pytest.mark.slow  # 10-12 s: `make test-slow` (CI runs it)
def test_a_handler_slower_than_max_poll_interval_runs_once_without_a_rebalance(
    run_agents: Callable[..., AgentRun],
) -> None:
    executions: list[str] = []

    @agent("slow")
    def slow(task: Work, ctx: AgentContext) -> Done:
        executions.append(ctx.task.task_id)
        time.sleep(task.sleep_s)
        return Done()

    run = run_agents(slow, kafka_max_poll_interval_ms=MAX_POLL_INTERVAL_MS)
    run.dispatch("slow", ("long", 1, {"sleep_s": SLOWER_THAN_MAX_POLL_S}))
    run.start()

    (result,) = run.results(1)
    (member,) = run.served.groups[run.topics.agent_group("slow")]
    rebalances = (member.assignments, member.revocations)
    assert run.finish() == 0

    assert isinstance(result.payload, TaskCompleted)
    assert executions == ["long"]
    assert rebalances == (1, 0)  # joined once, never lost its partition
    assert run.leftovers("slow") == []


@pytest.mark.slow  # 10-12 s: `make test-slow` (CI runs it)
def test_without_pausing_the_same_handler_loses_its_partition_and_runs_again(
    run_agents: Callable[..., AgentRun],
) -> None:
    # Guards the test above: its handler really outlives max.poll.interval.ms.
    executions: list[str] = []

    @agent("unpaused")
    def unpaused(task: Work, ctx: AgentContext) -> Done:
        executions.append(ctx.task.task_id)
        if len(executions) == 1:
            time.sleep(task.sleep_s)
        return Done()

    run = run_agents(unpaused, kafka_max_poll_interval_ms=MAX_POLL_INTERVAL_MS)
    run.dispatch("unpaused", ("long", 1, {"sleep_s": SLOWER_THAN_MAX_POLL_S}))
    (running,) = assemble(
        [unpaused],
        bus=run.bus,
        settings=run.settings,
        environment=run.environment,
        stop=run.stop,
    )
    running.loop.pause_while_handling = False
    thread = threading.Thread(target=running.loop.run, daemon=True)
    thread.start()
    try:
        member = running.loop.subscriber
        assert isinstance(member, KafkaSubscriber)
        # Delivered again: run again, or (its answer recorded meanwhile) answered from
        # the result ledger.
        wait_for(
            lambda: len(executions) + running.worker.answered_again >= 2,
            timeout=60,
            what="the task to be delivered again",
        )
        assert member.revocations >= 1
    finally:
        run.stop.set()
        thread.join(30)


def test_stopping_finishes_running_tasks_and_commits_only_up_to_unfinished_ones(
    run_agents: Callable[..., AgentRun],
) -> None:
    started = threading.Event()
    ran: list[tuple[str, int]] = []

    @agent("graceful", concurrency=2)
    def graceful(task: Work, ctx: AgentContext) -> Done:
        ran.append((ctx.task.task_id, ctx.task.attempt))
        if task.sleep_s:
            started.set()
            time.sleep(task.sleep_s)
        return Done()

    run = run_agents(graceful, agent_shutdown_grace_s=30)
    # One partition, in this order: a#1 (slow), a#2 (same key: waits for a#1), b#1.
    run.dispatch("graceful", ("a", 1, {"sleep_s": 2.0}), ("a", 2, {}), ("b", 1, {}))
    run.start()
    wait_for(started.is_set, what="a#1 to start")
    run.results(1)  # b#1, beside a#1

    assert run.finish() == 0  # SIGTERM while a#1 runs

    assert sorted(ran) == [("a", 1), ("b", 1)]  # a#2 never started
    finished = [(r.task_id, r.attempt) for r in payloads(run.results(2), TaskCompleted)]
    assert sorted(finished) == [("a", 1), ("b", 1)]  # a#1 finished and was published
    # a#1 is committed; a#2 is not, so neither is b#1 behind it: both come again.
    assert task_ids(run.leftovers("graceful")) == [("a", 2), ("b", 1)]


def test_a_task_running_past_the_shutdown_grace_is_left_to_be_delivered_again(
    run_agents: Callable[..., AgentRun], release: threading.Event
) -> None:
    started = threading.Event()

    @agent("stuck")
    def stuck(task: Work) -> Done:
        started.set()
        release.wait(60)
        return Done()

    run = run_agents(stuck, agent_shutdown_grace_s=0.5)
    run.dispatch("stuck", ("s", 1, {}))
    run.start()
    wait_for(started.is_set, what="the task to start")

    assert run.finish() == 0

    assert task_ids(run.leftovers("stuck")) == [("s", 1)]
    assert run.received == []
