"""What the orchestrator's metrics count, read off decisions (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.service.observations import Observation, observe
from orchestrator.workflow.messages import (
    AnnounceWorkflowCompleted,
    AnnounceWorkflowFailed,
    Decision,
    DispatchTask,
    LeaseExpired,
    RetryDue,
    TaskSucceeded,
)
from orchestrator.workflow.state import (
    Attempt,
    TaskState,
    TaskStatus,
    WorkflowState,
    WorkflowStatus,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TASK = TaskState(
    id="t-1",
    step="triage",
    capability="triage",
    status=TaskStatus.DISPATCHED,
    max_attempts=3,
    attempt=2,
    attempts=(Attempt(1, T0), Attempt(2, T0 + timedelta(seconds=10))),
)
STATE = WorkflowState(
    id="wf-1",
    type="support.ticket",
    status=WorkflowStatus.RUNNING,
    input={},
    accepted_at=T0,
    tasks={"triage": TASK},
)


def succeeded(attempt: int) -> TaskSucceeded:
    return TaskSucceeded(
        task_id="t-1",
        attempt=attempt,
        output={},
        confidence=1.0,
        reasoning=(),
        usage={},
        agent={},
    )


def test_a_result_counts_for_its_capability_timed_from_its_own_attempt() -> None:
    now = T0 + timedelta(seconds=12.5)
    found = observe(STATE, succeeded(2), Decision(STATE), now)
    assert found == [Observation("completed", "triage", 2.5)]


def test_dispatches_after_a_lease_ran_out_are_re_dispatches() -> None:
    dispatch = DispatchTask(TASK, deadline=T0)
    by_lease = observe(STATE, LeaseExpired("t-1", 2), Decision(STATE, (dispatch,)), T0)
    by_retry = observe(STATE, RetryDue("t-1"), Decision(STATE, (dispatch,)), T0)
    assert by_lease == [Observation("redispatched", "triage")]
    assert by_retry == [Observation("dispatched", "triage")]


def test_a_finished_workflow_is_timed_from_its_goal() -> None:
    now = T0 + timedelta(minutes=3)
    completed = Decision(STATE, (AnnounceWorkflowCompleted(output={}, duration_ms=1.0),))
    failed = Decision(STATE, (AnnounceWorkflowFailed(reason="no", step=None, error=None),))
    assert observe(STATE, succeeded(2), completed, now)[-1] == Observation(
        "workflow_completed", "support.ticket", 180.0
    )
    assert observe(STATE, succeeded(2), failed, now)[-1] == Observation(
        "workflow_failed", "support.ticket", 180.0
    )


def test_a_result_for_an_unknown_task_counts_nothing() -> None:
    stray = TaskSucceeded(
        task_id="nope", attempt=1, output={}, confidence=1.0, reasoning=(), usage={}, agent={}
    )
    assert observe(STATE, stray, Decision(STATE), T0) == []
