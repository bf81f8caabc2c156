"""Cancelling a workflow on the real PostgreSQL: the workflow, its tasks and escalations
as the rules say, the audit trail, refusals, and what arrives afterwards (a late result, a
reviewer's decision, the reconciler's timers) changing nothing.

Workflows are made the way production makes them: goals and agents' results go through
the intake of ``ReviewHarness`` (tests/orchestrator/test_reviews.py).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from orchestrator.errors import WorkflowFinished, WorkflowNotFound
from orchestrator.review import CancelRequest, ReviewConflict
from orchestrator.store import escalations as escalation_rows
from orchestrator.store import outbox
from orchestrator.store.escalations import InboxFilter
from orchestrator.store.tables import audit_events
from orchestrator.workflow.state import EscalationStatus, TaskStatus, WorkflowState, WorkflowStatus
from tests.orchestrator.test_reviews import LATER, ReviewHarness, write_playbooks
from waypost.events import Event, GoalSubmitted, TaskAttemptRef, WorkflowCancelled

pytestmark = pytest.mark.integration

STOP = CancelRequest(actor="olga", reason="the customer withdrew the request")


@pytest.fixture
def harness(engine: Engine, namespace: str, tmp_path: Path) -> ReviewHarness:
    return ReviewHarness(engine, namespace, write_playbooks(tmp_path / "playbooks"))


def cancel(harness: ReviewHarness, workflow_id: str) -> WorkflowState:
    with harness.engine.begin() as conn:
        cancelled = harness.reviews.cancel(
            conn, workflow_id=workflow_id, request=STOP, now=harness.now
        )
    return cancelled.state


def queued_announcements(harness: ReviewHarness) -> list[Event]:
    """Events the cancellations queued for the workflow events topic (left in place)."""
    with harness.engine.connect() as conn:
        rows = outbox.claim(conn, limit=1000, created_before=LATER)
    return [
        harness.codec.decode(r.value, r.headers)
        for _, r in rows
        if r.topic == harness.topics.workflow_events
    ]


def submit(harness: ReviewHarness, goal_id: str) -> WorkflowState:
    goal = GoalSubmitted(type="test.reviewed", input={"text": "hello"})
    harness.deliver(Event(goal, source="tests", id=goal_id), harness.topics.goals)
    return harness.state(goal_id)


def test_a_running_workflow_is_cancelled_with_its_dispatched_task(
    harness: ReviewHarness,
) -> None:
    running = submit(harness, "g-running")
    assert running.tasks["draft"].status is TaskStatus.DISPATCHED
    harness.now += timedelta(seconds=3)

    answered = cancel(harness, "g-running")

    stored = harness.state("g-running")
    assert answered == stored
    assert stored.status is WorkflowStatus.CANCELLED
    assert stored.reason == "cancelled by olga: the customer withdrew the request"
    assert stored.finished_at == harness.now
    draft = stored.tasks["draft"]
    assert draft.status is TaskStatus.CANCELLED
    assert draft.lease_expires_at is None
    assert draft.attempts[-1].outcome == "cancelled"
    with harness.engine.connect() as conn:
        rows = conn.execute(
            select(audit_events).where(audit_events.c.workflow_id == "g-running")
        ).all()
    assert [(r.actor, r.action, r.detail) for r in rows] == [
        ("olga", "cancel", {"reason": STOP.reason, "was": "running"})
    ]
    # workflow.cancelled waits in the outbox, written with the change, naming the
    # attempt an agent may still be running.
    (event,) = queued_announcements(harness)
    assert event.payload == WorkflowCancelled(
        workflow_id="g-running",
        type="test.reviewed",
        reason=STOP.reason,
        cancelled_by="olga",
        tasks=[
            TaskAttemptRef(
                workflow_id="g-running",
                task_id=draft.id,
                step="draft",
                capability="echo",
                attempt=1,
            )
        ],
    )
    assert event.subject == "g-running"


def test_a_late_result_and_the_lease_timer_change_nothing(harness: ReviewHarness) -> None:
    submit(harness, "g-late")
    cancel(harness, "g-late")
    before = harness.state("g-late")

    harness.report("g-late", {"text": "finished anyway"})  # task.completed, attempt 1
    harness.now += timedelta(hours=1)  # far past the lease
    ticked = harness.reconciler.tick()

    assert harness.state("g-late") == before
    assert ticked.applied == 0
    assert len(harness.published(harness.topics.tasks("echo"))) == 1  # no re-dispatch


def test_an_open_escalation_leaves_the_inbox_and_a_decision_on_it_is_refused(
    harness: ReviewHarness,
) -> None:
    escalation = harness.escalate("g-escalated")
    with harness.engine.connect() as conn:
        inbox = escalation_rows.inbox(conn, filters=InboxFilter(), now=harness.now)
    assert [row.id for row in inbox.rows] == [escalation.id]

    cancel(harness, "g-escalated")

    closed = harness.escalation(escalation.id)
    assert closed.status is EscalationStatus.RESOLVED
    assert closed.decision is None
    with harness.engine.connect() as conn:
        inbox = escalation_rows.inbox(conn, filters=InboxFilter(), now=harness.now)
    assert inbox.rows == []
    assert [(e.actor, e.action, e.detail) for e in harness.audit(escalation.id)][-1] == (
        "olga",
        "resolved",
        {"cause": "workflow_cancelled", "reason": STOP.reason},
    )
    with pytest.raises(ReviewConflict):
        harness.decide(harness.request(escalation, "approve"))
    assert harness.state("g-escalated").status is WorkflowStatus.CANCELLED


def test_an_unknown_workflow_is_not_found(harness: ReviewHarness) -> None:
    with pytest.raises(WorkflowNotFound, match="no workflow with id 'nobody'"):
        cancel(harness, "nobody")


@pytest.mark.parametrize("first", ["complete", "cancel"])
def test_a_finished_workflow_is_refused_naming_its_status(
    harness: ReviewHarness, first: str
) -> None:
    escalation = harness.escalate("g-finished")
    if first == "complete":
        harness.decide(harness.request(escalation, "approve"))
        harness.deliver_decisions()
        expected = "completed"
    else:
        cancel(harness, "g-finished")
        expected = "cancelled"
    before = harness.state("g-finished")
    assert before.status == expected

    with pytest.raises(WorkflowFinished, match=f"already {expected}") as refused:
        cancel(harness, "g-finished")

    assert refused.value.status == 409
    assert refused.value.detail == {"workflow_status": expected}
    assert harness.state("g-finished") == before
    assert len(queued_announcements(harness)) == (1 if first == "cancel" else 0)
