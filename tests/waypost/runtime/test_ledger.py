"""The result ledger: a task delivered again after it was answered does not run again.

A worker killed, frozen or stopped mid-batch has the batch's uncommitted tasks delivered
again; those it had answered are answered from the ledger (their recorded records are
published again) and only the ones still running re-run.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import Engine

from tests.waiting import wait_for
from tests.waypost.runtime.harness import AgentRun, payloads
from tests.waypost.runtime.test_worker import _delivery, _results, _task, _worker
from waypost import AgentContext, agent
from waypost.bus.dead_letters import REPLAY_OF_HEADER
from waypost.events import TaskCompleted
from waypost.runtime.ledger import ResultLedger
from waypost.settings import AgentSettings

pytestmark = pytest.mark.integration


class Work(BaseModel):
    block: bool = False


class Done(BaseModel):
    task: str


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set when the test ends, so a handler left blocked on it returns."""
    event = threading.Event()
    yield event
    event.set()


def test_a_task_delivered_again_is_answered_from_the_ledger(engine: Engine) -> None:
    runs: list[str] = []

    @agent("echo")
    def counting(task: Work, ctx: AgentContext) -> Done:
        runs.append(ctx.task.task_id)
        return Done(task=ctx.task.task_id)

    ledger = ResultLedger(engine)
    worker, bus = _worker(counting, ledger=ledger)
    delivery = _delivery(_task({}))
    try:
        worker.handle([delivery])
        # A fast handler's answer is recorded in the background (re-running it would
        # cost less than waiting); a delivery after a crash comes long after that.
        wait_for(lambda: ledger.recorded_count == 1, what="the answer to be recorded")
        worker.handle([delivery])  # delivered again: the batch was never committed
    finally:
        ledger.close()

    assert runs == ["task-1"]
    first, again = _results(bus)
    assert again.payload == first.payload
    assert again.id == first.id  # the very same event, so it is applied once
    assert (worker.completed, worker.answered_again) == (1, 1)


def test_another_attempt_of_the_task_runs(engine: Engine) -> None:
    runs: list[int] = []

    @agent("echo")
    def counting(task: Work, ctx: AgentContext) -> Done:
        runs.append(ctx.task.attempt)
        return Done(task=ctx.task.task_id)

    ledger = ResultLedger(engine)
    worker, _ = _worker(counting, ledger=ledger)
    try:
        worker.handle([_delivery(_task({}, attempt=1))])
        worker.handle([_delivery(_task({}, attempt=2))])
    finally:
        ledger.close()
    assert runs == [1, 2]


@pytest.fixture
def run_agents(make_settings: Callable[..., Any]) -> Iterator[Callable[..., AgentRun]]:
    """Agent workers of this test (one partition per task topic); stopped afterwards."""
    runs: list[AgentRun] = []

    def start(*agents: Any, **overrides: Any) -> AgentRun:
        settings = make_settings(AgentSettings, topic_partitions=1, **overrides)
        run = AgentRun(settings, agents, instance=f"worker-{len(runs)}")
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()


def test_after_a_worker_stops_mid_batch_only_the_task_it_was_running_runs_again(
    run_agents: Callable[..., AgentRun], release: threading.Event
) -> None:
    executions: Counter[str] = Counter()
    lock = threading.Lock()

    @agent("ledgered", concurrency=2)
    def ledgered(task: Work, ctx: AgentContext) -> Done:
        with lock:
            executions[ctx.task.task_id] += 1
            first_run = executions[ctx.task.task_id] == 1
        if task.block and first_run:
            release.wait(60)  # as a worker killed mid-task: it never answers
        return Done(task=ctx.task.task_id)

    first = run_agents(ledgered, agent_shutdown_grace_s=0.5)
    # One partition: t04 blocks, so nothing after it can be committed while it runs.
    tasks = [(f"t{n:02}", 1, {"block": n == 4}) for n in range(20)]
    first.dispatch("ledgered", *tasks)
    first.start()
    wait_for(lambda: sum(executions.values()) == 20, what="every task to have started")
    first.results(19)
    assert first.finish() == 0  # t04 outlives the grace: t04..t19 stay uncommitted

    second = run_agents(ledgered)
    second.start()
    results = second.results(19 + 16)  # the first worker's 19, then t04..t19 again
    assert second.finish() == 0

    assert executions["t04"] == 2  # it was running when the first worker stopped
    assert {task for task, count in executions.items() if count > 1} == {"t04"}
    published = Counter(r.output["task"] for r in payloads(results, TaskCompleted))
    # t05..t19 answered twice with one run each: the second time from the ledger.
    assert published == {f"t{n:02}": 1 if n <= 4 else 2 for n in range(20)}


def test_a_replayed_dead_letter_runs_even_if_its_attempt_was_answered(engine: Engine) -> None:
    runs: list[str] = []

    @agent("echo")
    def counting(task: Work, ctx: AgentContext) -> Done:
        runs.append(ctx.task.task_id)
        return Done(task=ctx.task.task_id)

    ledger = ResultLedger(engine)
    worker, _ = _worker(counting, ledger=ledger)
    delivery = _delivery(_task({}))
    replayed = replace(
        delivery,
        record=replace(
            delivery.record, headers=(*delivery.record.headers, (REPLAY_OF_HEADER, b"7"))
        ),
    )
    try:
        worker.handle([delivery])
        wait_for(lambda: ledger.recorded_count == 1, what="the answer to be recorded")
        worker.handle([replayed])  # an analyst sent it again on purpose (maybe edited)
    finally:
        ledger.close()
    assert runs == ["task-1", "task-1"]
