"""The workflow-to-task mapping, without fixtures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from a2a.helpers import get_data_parts, get_message_text
from a2a.types.a2a_pb2 import TaskState

from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    TaskError,
    WorkflowState,
    WorkflowStatus,
)
from review_ui.a2a.tasks import task_of, waiting_escalation

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def workflow(status: WorkflowStatus, **fields: Any) -> WorkflowState:
    return WorkflowState(
        id="a2a:m1", type="test.echo", status=status, input={}, accepted_at=T0, **fields
    )


def escalation(id: str, status: EscalationStatus, opened: int, reason: str) -> EscalationState:
    at = T0 + timedelta(minutes=opened)
    return EscalationState(
        id=id,
        task_id="t1",
        step="reviewed",
        attempt=1,
        kind="approval",
        reason=reason,
        status=status,
        priority=2,
        group="reviewers",
        version=1,
        digest="d",
        content={},
        opened_at=at,
        due_at=at + timedelta(hours=1),
        warn_at=at + timedelta(minutes=30),
    )


def test_an_accepted_workflow_is_submitted_and_a_running_one_working() -> None:
    accepted = task_of(workflow(WorkflowStatus.ACCEPTED))
    running = task_of(workflow(WorkflowStatus.RUNNING, started_at=T0 + timedelta(seconds=1)))

    assert (accepted.id, accepted.context_id) == ("a2a:m1", "a2a:m1")
    assert accepted.status.state == TaskState.TASK_STATE_SUBMITTED
    assert running.status.state == TaskState.TASK_STATE_WORKING
    assert running.status.timestamp.ToDatetime(UTC) == T0 + timedelta(seconds=1)
    assert not running.status.HasField("message")
    assert not running.artifacts


def test_a_running_workflow_with_a_pending_escalation_requires_input_with_its_reason() -> None:
    running = workflow(
        WorkflowStatus.RUNNING,
        escalations={
            "e0": escalation("e0", EscalationStatus.RESOLVED, 0, "old"),
            "e2": escalation("e2", EscalationStatus.PENDING, 2, "later"),
            "e1": escalation("e1", EscalationStatus.PENDING, 1, "confidence 0.40 < 0.70"),
        },
    )

    status = task_of(running).status

    assert status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    text = "step 'reviewed' waits for a reviewer: confidence 0.40 < 0.70"
    assert get_message_text(status.message) == text
    assert get_data_parts(status.message.parts) == [
        {
            "escalation_id": "e1",
            "step": "reviewed",
            "kind": "approval",
            "reason": "confidence 0.40 < 0.70",
        }
    ]
    assert status.timestamp.ToDatetime(UTC) == T0 + timedelta(minutes=1)
    assert task_of(running).status == status  # the same workflow reads the same


def test_a_decided_escalation_leaves_the_task_working() -> None:
    decided = escalation("e1", EscalationStatus.DECIDED, 1, "approve?")
    running = workflow(WorkflowStatus.RUNNING, escalations={"e1": decided})

    assert waiting_escalation(running) is None
    assert task_of(running).status.state == TaskState.TASK_STATE_WORKING


def test_a_completed_workflow_has_each_output_key_as_an_artifact() -> None:
    done = workflow(
        WorkflowStatus.COMPLETED,
        output={"reviewed": {"text": "hi", "attempt": 1}, "timed": None},
        finished_at=T0 + timedelta(minutes=3),
    )

    task = task_of(done)

    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert [(a.artifact_id, a.name) for a in task.artifacts] == [
        ("reviewed", "reviewed"),
        ("timed", "timed"),
    ]
    assert get_data_parts(task.artifacts[0].parts) == [{"text": "hi", "attempt": 1.0}]
    assert get_data_parts(task.artifacts[1].parts) == [None]


def test_failed_and_cancelled_workflows_say_why() -> None:
    failed = task_of(
        workflow(
            WorkflowStatus.FAILED,
            reason="reviewer ann rejected step 'reviewed': no",
            failed_step="reviewed",
            error=TaskError("Rejected", "no", retryable=False),
        )
    )
    cancelled = task_of(workflow(WorkflowStatus.CANCELLED, reason="no longer needed"))

    assert failed.status.state == TaskState.TASK_STATE_FAILED
    assert get_message_text(failed.status.message) == "reviewer ann rejected step 'reviewed': no"
    assert get_data_parts(failed.status.message.parts)[0] == {
        "reason": "reviewer ann rejected step 'reviewed': no",
        "failed_step": "reviewed",
        "error": {"type": "Rejected", "message": "no", "retryable": False},
    }
    assert not failed.artifacts
    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
    assert get_message_text(cancelled.status.message) == "no longer needed"
