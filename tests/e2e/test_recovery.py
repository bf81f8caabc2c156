"""Failures in flight: a killed agent, and garbage on a task topic."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.workflow.machine import task_id
from orchestrator.workflow.state import TaskStatus, WorkflowState, WorkflowStatus
from tests.e2e.conftest import Platform
from tests.waiting import wait_for
from waypost.bus.kafka import KafkaBus
from waypost.bus.records import OutgoingRecord, ReceivedRecord
from waypost.events import new_id


def _finished(platform: Platform, workflow_id: str, timeout: float = 60) -> WorkflowState:
    def probe() -> WorkflowState | None:
        state = platform.workflow(workflow_id)
        return state if state is not None and state.status.finished else None

    return wait_for(probe, timeout=timeout, what=f"workflow {workflow_id} to finish")


def _wait_for_topics(platform: Platform, *names: str) -> None:
    admin = KafkaBus(platform.bootstrap, platform.settings()).admin()
    wait_for(
        lambda: set(names) <= set(admin.list_topics()),
        timeout=30,
        what=f"topics {names} to be provisioned",
    )


def _headers(record: ReceivedRecord) -> dict[str, str]:
    return {name: (value or b"").decode(errors="replace") for name, value in record.headers}


@pytest.mark.slow  # 8-15 s: `make test-slow` (CI runs it)
def test_an_agent_killed_mid_task_is_replaced_and_the_step_takes_effect_once(
    platform: Platform, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    platform.start_orchestrator()
    platform.start_agents("agent-a")
    workflow_id = platform.submit(
        "test.echo.short", {"text": "hello", "marker_dir": str(markers), "stall_once_s": 120}
    )
    wait_for(lambda: (markers / "stalled").exists(), timeout=30, what="agent A to take the task")

    platform.kill("agent-a")  # SIGKILL in the middle of the handler: no result, no commit

    def redispatched() -> bool:
        state = platform.workflow(workflow_id)
        return state is not None and state.tasks["echo"].attempt == 2

    # The lease (3 s) runs out without a result: the reconciler dispatches attempt 2.
    wait_for(redispatched, timeout=30, what="the task to be re-dispatched")
    platform.start_agents("agent-b")
    state = _finished(platform, workflow_id)

    assert state.status is WorkflowStatus.COMPLETED
    task = state.tasks["echo"]
    assert task.status is TaskStatus.COMPLETED
    assert task.output == {"text": "hello", "attempt": 2}
    assert [a.outcome for a in task.attempts] == ["lease_expired", "completed"]
    # Agent B got attempt 1 again (A never committed it) but dropped it: its deadline had
    # passed. So the step ran to completion exactly once, on attempt 2.
    assert sorted(p.name.split(".")[1] for p in markers.glob(f"{task.id}.*")) == ["1", "2"]
    # The workflow's effects happened once: one started and one completed event.
    events = platform.read_topic(platform.topics.workflow_events, expect=2)
    kinds = [_headers(r)["ce_type"] for r in events if _headers(r)["ce_subject"] == workflow_id]
    assert sorted(kinds) == ["waypost.workflow.completed", "waypost.workflow.started"]


def test_garbage_on_a_task_topic_is_dead_lettered_and_the_next_task_runs(
    platform: Platform,
) -> None:
    platform.start_orchestrator()
    platform.start_agents()
    tasks_topic = platform.topics.tasks("echo")
    _wait_for_topics(platform, tasks_topic, tasks_topic + ".dlq")
    goal_id = new_id()
    # Same key as the task that follows: same partition, so it really is "next".
    garbage = OutgoingRecord(
        tasks_topic,
        task_id(goal_id, "echo").encode(),
        b"\x00\x9f not json at all",
        (("ce_type", b"waypost.task.dispatched"), ("x-sender", b"fuzzer")),
    )
    platform.publish([garbage])

    platform.submit("test.echo", {"text": "after the garbage"}, goal_id=goal_id)
    state = _finished(platform, goal_id)

    assert state.status is WorkflowStatus.COMPLETED
    assert state.tasks["echo"].output == {"text": "after the garbage", "attempt": 1}
    (dead,) = platform.read_topic(tasks_topic + ".dlq", expect=1)
    assert (dead.key, dead.value) == (garbage.key, garbage.value)
    assert dead.headers[: len(garbage.headers)] == garbage.headers
    headers = _headers(dead)
    assert headers["waypost-dlq-source-topic"] == tasks_topic
    assert headers["waypost-dlq-consumer-group"] == platform.topics.agent_group("echo")
    assert headers["waypost-dlq-error-class"] == "UndecodableEvent"
    assert (
        "missing header(s) ce_id, ce_source, ce_specversion" in headers["waypost-dlq-error-message"]
    )
    assert int(headers["waypost-dlq-source-offset"]) >= 0


def test_a_task_failing_every_attempt_fails_the_workflow_with_the_reason(
    platform: Platform,
) -> None:
    platform.start_orchestrator()
    platform.start_agents()
    workflow_id = platform.submit("test.echo", {"text": "x", "fail": "retryable"})

    state = _finished(platform, workflow_id)

    assert state.status is WorkflowStatus.FAILED
    task = state.tasks["echo"]
    assert task.attempt == 3  # retries: 2 in tests/support/playbooks/echo.yaml
    assert [a.outcome for a in task.attempts] == ["failed", "failed", "failed"]
    assert state.dead_letter is not None
    assert state.reason == (
        "step 'echo' failed after 3 attempt(s): RuntimeError: asked to fail (attempt 3); "
        f"dead-lettered to {state.dead_letter.topic} as event {state.dead_letter.event_id}: "
        "fix and replay it to resume"
    )
    events = platform.read_topic(platform.topics.workflow_events, expect=2)
    failed = [r for r in events if _headers(r)["ce_type"] == "waypost.workflow.failed"]
    assert len(failed) == 1
