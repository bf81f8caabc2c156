"""A worker with ``concurrency``: up to N tasks of a batch at once, tasks of one key in
order, and a stop that lets running tasks finish but starts no new ones.

Pure tests on the in-memory bus: ``handle`` gets the batch directly. Handlers meet at
barriers (with a timeout) to prove they overlap, and block on events the test releases
to stay "running"; nothing waits on the clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from tests.waypost.runtime.test_worker import _delivery, _results, _task, _worker
from waypost import AgentContext, NonRetryableError, agent
from waypost.bus.loop import Delivery
from waypost.errors import AgentDefinitionError
from waypost.events import TaskCompleted, TaskFailed

TIMEOUT_S = 10.0


class Job(BaseModel):
    fail: bool = False


class Done(BaseModel):
    ok: bool = True


class Tracker:
    """Counts executions that run at the same time, overall and per task id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running: dict[str, int] = {}
        self.most = 0
        self.same_key_overlaps = 0
        self.order: list[tuple[str, int]] = []

    def enter(self, ctx: AgentContext) -> None:
        with self._lock:
            key = ctx.task.task_id
            if self.running.get(key):
                self.same_key_overlaps += 1
            self.running[key] = self.running.get(key, 0) + 1
            self.most = max(self.most, sum(self.running.values()))
            self.order.append((key, ctx.task.attempt))

    def leave(self, ctx: AgentContext) -> None:
        with self._lock:
            self.running[ctx.task.task_id] -= 1


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event blocked handlers wait for; set when the test ends, so none is left hanging."""
    event = threading.Event()
    yield event
    event.set()


def _batch(*keys: tuple[str, int]) -> list[Delivery]:
    """One delivery per (task id, attempt); the task id is the record key."""
    return [
        _delivery(_task({}, task_id=task_id, attempt=attempt), offset)
        for offset, (task_id, attempt) in enumerate(keys)
    ]


def test_up_to_concurrency_tasks_run_at_once() -> None:
    tracker = Tracker()
    meet = threading.Barrier(3, timeout=TIMEOUT_S)

    @agent("echo", concurrency=3)
    def parallel(task: Job, ctx: AgentContext) -> Done:
        tracker.enter(ctx)
        try:
            meet.wait()  # passes only when three tasks run at the same time
        finally:
            tracker.leave(ctx)
        return Done()

    worker, bus = _worker(parallel)

    assert worker.handle(_batch(*((f"t-{i}", 1) for i in range(6)))) is None

    results = [event.payload for event in _results(bus)]
    assert all(isinstance(r, TaskCompleted) for r in results)
    assert sorted(r.task_id for r in results) == [f"t-{i}" for i in range(6)]  # type: ignore[attr-defined]
    assert tracker.most == 3  # never more than the concurrency
    assert (worker.completed, worker.failed, worker.handled) == (6, 0, 6)


def test_tasks_with_the_same_key_run_one_after_another_in_batch_order() -> None:
    tracker = Tracker()
    # Attempt k of task a meets attempt k of task b: the two keys run side by side,
    # while each key's attempts can only run in turn.
    rounds = {attempt: threading.Barrier(2, timeout=TIMEOUT_S) for attempt in (1, 2, 3)}

    @agent("echo", concurrency=4)
    def keyed(task: Job, ctx: AgentContext) -> Done:
        tracker.enter(ctx)
        try:
            rounds[ctx.task.attempt].wait()
        finally:
            tracker.leave(ctx)
        return Done()

    worker, bus = _worker(keyed)
    batch = _batch(("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3))

    assert worker.handle(batch) is None

    assert tracker.same_key_overlaps == 0
    assert [attempt for key, attempt in tracker.order if key == "a"] == [1, 2, 3]
    assert [attempt for key, attempt in tracker.order if key == "b"] == [1, 2, 3]
    assert tracker.most == 2  # one per key, although four threads were allowed
    published = [(e.payload.task_id, e.payload.attempt) for e in _results(bus)]  # type: ignore[attr-defined]
    assert [p for p in published if p[0] == "a"] == [("a", 1), ("a", 2), ("a", 3)]
    assert len(published) == 6


def test_a_concurrency_of_one_runs_tasks_in_batch_order() -> None:
    tracker = Tracker()

    @agent("echo")
    def serial(task: Job, ctx: AgentContext) -> Done:
        tracker.enter(ctx)
        tracker.leave(ctx)
        return Done()

    worker, _ = _worker(serial)
    keys = [(f"t-{i % 3}", i) for i in range(1, 10)]

    worker.handle(_batch(*keys))

    assert tracker.order == keys
    assert tracker.most == 1


def test_completed_and_failed_results_are_counted() -> None:
    @agent("echo", concurrency=4)
    def sometimes(task: Job) -> Done:
        if task.fail:
            raise NonRetryableError("asked to")
        return Done()

    worker, bus = _worker(sometimes)
    batch = [_delivery(_task({"fail": i % 4 == 0}, task_id=f"t-{i}"), i) for i in range(10)]

    worker.handle(batch)

    kinds = [type(e.payload) for e in _results(bus)]
    assert (kinds.count(TaskCompleted), kinds.count(TaskFailed)) == (7, 3)
    assert (worker.completed, worker.failed, worker.handled) == (7, 3, 10)


def test_when_stopping_running_tasks_finish_and_the_others_come_back_unfinished() -> None:
    stop = threading.Event()
    started: list[str] = []

    @agent("echo")  # one at a time: the stop comes while the first task runs
    def stops(task: Job, ctx: AgentContext) -> Done:
        started.append(ctx.task.task_id)
        stop.set()
        return Done()

    worker, bus = _worker(stops, stop=stop)
    batch = _batch(("t-1", 1), ("t-2", 1), ("t-3", 1))

    unfinished = worker.handle(batch)

    assert started == ["t-1"]
    assert unfinished == batch[1:]
    assert [e.payload.task_id for e in _results(bus)] == ["t-1"]  # type: ignore[attr-defined]
    assert worker.completed == 1


def test_a_task_still_running_when_the_grace_ends_is_abandoned_unpublished(
    release: threading.Event,
) -> None:
    stop = threading.Event()
    blocked = threading.Event()

    @agent("echo", concurrency=2)
    def hangs(task: Job, ctx: AgentContext) -> Done:
        if ctx.task.task_id == "stuck":
            blocked.set()
            release.wait(TIMEOUT_S)
        else:
            assert blocked.wait(TIMEOUT_S)
            stop.set()  # SIGTERM arrives while "stuck" runs
        return Done()

    worker, bus = _worker(hangs, stop=stop, shutdown_grace_s=1.0)
    batch = _batch(("stuck", 1), ("quick", 1), ("later", 1))

    unfinished = worker.handle(batch)

    assert unfinished is not None
    assert {d.event.task_id for d in unfinished} == {"stuck", "later"}
    assert [e.payload.task_id for e in _results(bus)] == ["quick"]  # type: ignore[attr-defined]


def test_an_error_outside_the_handler_stops_the_batch_and_is_raised() -> None:
    def broken_clock() -> Any:
        raise RuntimeError("clock broke")

    worker, bus = _worker()
    worker.clock = broken_clock

    with pytest.raises(RuntimeError, match="clock broke"):
        worker.handle(_batch(("t-1", 1), ("t-2", 1)))

    assert bus.broker.records(worker.topics.results) == []


def test_batches_shrink_for_slow_handlers_less_with_more_concurrency() -> None:
    @agent("echo", concurrency=4)
    def four(task: Job) -> Done:
        return Done()

    single, _ = _worker(batch_budget_s=10.0)
    quad, _ = _worker(four, batch_budget_s=10.0)
    for worker in (single, quad):
        worker._observe(2.0)  # two seconds a task

    assert single.batch_size(500) == 5
    assert quad.batch_size(500) == 20


@pytest.mark.parametrize("concurrency", [0, -2, 1.5, True, "4"])
def test_concurrency_must_be_a_whole_number_of_at_least_one(concurrency: Any) -> None:
    with pytest.raises(AgentDefinitionError, match="concurrency must be a whole number"):

        @agent("echo", concurrency=concurrency)
        def wrong(task: Job) -> Done:
            return Done()


def test_an_agent_describes_its_input_and_output_as_json_schema() -> None:
    @agent("echo", concurrency=3)
    def described(task: Job) -> Done:
        return Done()

    assert described.concurrency == 3
    assert described.input_schema()["properties"]["fail"] == {
        "default": False,
        "title": "Fail",
        "type": "boolean",
    }
    assert described.output_schema()["title"] == "Done"
