"""Exhausted tasks through the intake, on the real PostgreSQL: the dead letter goes out
through the outbox with the failure, the workflow's pointer to it is stored, and the
result of its replay resumes the workflow."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from orchestrator.workflow.machine import dispatch_id, task_id
from orchestrator.workflow.state import DeadLetter, TaskStatus, WorkflowStatus
from tests.orchestrator.service.test_intake import Harness
from waypost.events import DeadLetterRef, WorkflowCompleted, WorkflowFailed

pytestmark = pytest.mark.integration


@pytest.fixture
def harness(engine: Engine, namespace: str) -> Harness:
    return Harness(engine, namespace)


def _dead_lettered(harness: Harness) -> DeadLetter:
    harness.intake.handle([harness.goal("goal-1", text="bad")])
    harness.intake.handle([harness.failed("goal-1", retryable=False)])
    echo = task_id("goal-1", "echo")
    return DeadLetter(f"{harness.topics.tasks('echo')}.dlq", dispatch_id(echo, 1), echo, 1)


def test_a_task_that_cannot_be_retried_is_dead_lettered_as_its_dispatch(harness: Harness) -> None:
    letter = _dead_lettered(harness)

    state = harness.state("goal-1")
    assert state is not None
    assert state.status is WorkflowStatus.FAILED
    assert state.dead_letter == letter
    assert state.reason == (
        "step 'echo' failed and cannot be retried: Boom: it broke; dead-lettered to "
        f"{letter.topic} as event {letter.event_id}: fix and replay it to resume"
    )
    (dispatch,) = harness.bus.broker.records(harness.topics.tasks("echo"))
    (dead,) = harness.bus.broker.records(letter.topic)
    assert (dead.key, dead.value) == (dispatch.key, dispatch.value)
    assert dead.headers[: len(dispatch.headers)] == dispatch.headers
    assert dispatch.header("ce_id") == letter.event_id.encode()
    assert dead.header("waypost-dlq-reason") == b"exhausted"
    assert dead.header("waypost-dlq-consumer-group") == harness.topics.agent_group("echo").encode()
    failed = harness.payloads(harness.topics.workflow_events)[-1]
    assert isinstance(failed, WorkflowFailed)
    assert failed.dead_letter == DeadLetterRef(**letter.as_dict())
    assert harness.backlog() == 0


def test_the_result_of_a_replayed_dead_letter_completes_the_workflow(harness: Harness) -> None:
    _dead_lettered(harness)

    harness.intake.handle([harness.completed("goal-1", attempt=1)])

    state = harness.state("goal-1")
    assert state is not None
    assert state.status is WorkflowStatus.COMPLETED
    assert (state.reason, state.error, state.dead_letter) == (None, None, None)
    assert state.tasks["echo"].status is TaskStatus.COMPLETED
    assert state.output == {"echo": {"text": "hi back"}}
    completed = harness.payloads(harness.topics.workflow_events)[-1]
    assert isinstance(completed, WorkflowCompleted)


def test_a_replay_that_fails_again_is_dead_lettered_again(harness: Harness) -> None:
    letter = _dead_lettered(harness)

    harness.intake.handle([harness.failed("goal-1", retryable=False)])

    state = harness.state("goal-1")
    assert state is not None
    assert (state.status, state.dead_letter) == (WorkflowStatus.FAILED, letter)
    first, second = harness.bus.broker.records(letter.topic)
    assert (second.key, second.value) == (first.key, first.value)
    # The workflow stays failed: no second workflow.failed.
    assert [p.TYPE for p in harness.payloads(harness.topics.workflow_events)] == [
        "workflow.started",
        "workflow.failed",
    ]
