"""Cancellation reaching agent workers on the real broker: ``serve`` (what `waypost agent
run` runs) in a thread, and ``workflow.cancelled`` events published on the workflow
events topic as the HTTP app publishes them.

A handler waiting on ``ctx.cancellation`` returns as soon as its attempt is cancelled;
an attempt cancelled before it was delivered is not run, and its task is committed; the
other records of the topic are passed over, never dead-lettered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from tests.waiting import wait_for
from tests.waypost.runtime.harness import AgentRun, payloads
from waypost import AgentContext, agent
from waypost.bus.records import OutgoingRecord
from waypost.events import (
    Event,
    Payload,
    TaskAttemptRef,
    TaskCompleted,
    WorkflowCancelled,
    WorkflowStarted,
    default_codec,
)
from waypost.settings import AgentSettings

pytestmark = pytest.mark.integration

HANDLER_WAIT_S = 30.0  # far longer than the test: only a cancellation ends it early
PROMPTLY_S = 2.5  # from publishing the cancellation to the handler's return


class Wait(BaseModel):
    wait_s: float = HANDLER_WAIT_S


class Waited(BaseModel):
    cancelled: bool


class Runs:
    """When each task's handler started and returned (monotonic seconds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started: dict[str, float] = {}
        self.returned: dict[str, float] = {}

    def start(self, task_id: str) -> None:
        with self._lock:
            self.started[task_id] = time.monotonic()

    def finish(self, task_id: str) -> None:
        with self._lock:
            self.returned[task_id] = time.monotonic()


@pytest.fixture
def run_agents(make_settings: Callable[..., Any]) -> Iterator[Callable[..., AgentRun]]:
    """Start agents with this test's broker, database and namespace; stopped afterwards."""
    runs: list[AgentRun] = []

    def start(*agents: Any) -> AgentRun:
        settings = make_settings(AgentSettings, topic_partitions=1, agent_heartbeat_interval_s=0.5)
        run = AgentRun(settings, agents)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()


def _publish(run: AgentRun, records: list[OutgoingRecord]) -> None:
    publisher = run.bus.publisher("test-events")
    try:
        publisher.send(records).raise_for_failures()
    finally:
        publisher.close()


def _event(run: AgentRun, payload: Payload) -> OutgoingRecord:
    encoded = default_codec().encode(Event(payload, source="waypost/http"))
    return OutgoingRecord(run.topics.workflow_events, encoded.key, encoded.value, encoded.headers)


def test_a_cancelled_handler_returns_at_once_and_a_cancelled_attempt_does_not_run(
    run_agents: Callable[..., AgentRun], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="waypost.runtime.worker")
    runs = Runs()

    @agent("waiting")
    def waiting(task: Wait, ctx: AgentContext) -> Waited:
        runs.start(ctx.task.task_id)
        ctx.cancellation.wait(task.wait_s)
        runs.finish(ctx.task.task_id)
        return Waited(cancelled=ctx.cancelled)

    run = run_agents(waiting)
    run.start()
    # The harness gives each task a workflow "wf-<task id>"; the cancellation names
    # "queued" too, as if it had been dispatched and not yet delivered.
    run.dispatch("waiting", ("running", 1, {}))
    wait_for(lambda: "running" in runs.started, timeout=30, what="the handler to start")
    (listener,) = [
        member
        for group, members in run.served.groups.items()
        if group.startswith(f"{run.topics.namespace}.cancellations.")
        for member in members
    ]
    # Measured from when the listener reads the topic, not from when it joins its group.
    wait_for(lambda: listener.assignments, timeout=30, what="the listener's partitions")
    attempts = [
        TaskAttemptRef(
            workflow_id=f"wf-{task_id}",
            task_id=task_id,
            step="step",
            capability="waiting",
            attempt=1,
        )
        for task_id in ("running", "queued")
    ]
    cancelled = WorkflowCancelled(
        workflow_id="wf-running",
        type="test.runtime",
        reason="no longer needed",
        cancelled_by="ada",
        tasks=attempts,
    )
    started = WorkflowStarted(workflow_id="wf-running", type="test.runtime", steps=["step"])
    garbage = OutgoingRecord(run.topics.workflow_events, b"wf-running", b"not an event")
    sent = time.monotonic()
    # On one partition, in this order: the listener passes over the first two.
    _publish(run, [_event(run, started), garbage, _event(run, cancelled)])

    wait_for(lambda: "running" in runs.returned, timeout=10, what="the handler to see the cancel")
    assert runs.returned["running"] - sent < PROMPTLY_S  # not after its 30 s wait
    (result,) = run.results(1)
    completed = payloads([result], TaskCompleted)
    assert [(r.task_id, r.output) for r in completed] == [("running", {"cancelled": True})]

    run.dispatch("waiting", ("queued", 1, {}))
    wait_for(
        lambda: "not running step attempt 1 of workflow wf-queued" in caplog.text,
        timeout=30,
        what="the cancelled attempt to be passed over",
    )
    assert "queued" not in runs.started
    assert run.finish() == 0  # the listener never stopped the process
    assert run.leftovers("waiting") == []  # the skipped task was committed as handled
    topics = run.bus.admin().list_topics()
    assert run.topics.dlq(run.topics.workflow_events) not in topics  # nothing dead-lettered
