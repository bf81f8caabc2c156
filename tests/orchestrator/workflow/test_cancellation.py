"""Cancelling a workflow in the state machine. Pure: no fixtures, a clock only the test
moves."""

from __future__ import annotations

from orchestrator.workflow.cancellation import CANCELLED, CancelRequest, cancel, refuse_cancel
from orchestrator.workflow.machine import due_timers
from orchestrator.workflow.messages import AnnounceWorkflowCancelled, RecordReviewEvent
from orchestrator.workflow.state import EscalationStatus, TaskStatus, WorkflowStatus
from tests.orchestrator.workflow.harness import Run, statuses, ticket_run
from tests.orchestrator.workflow.test_review import decide, escalated_draft, report

STOP = CancelRequest(actor="ops", reason="customer withdrew the ticket")


def _cancel(run: Run) -> None:
    run.state = cancel(run.state, STOP, run.now).state


def test_cancelling_a_running_workflow_cancels_its_open_tasks_and_keeps_finished_ones() -> None:
    run = ticket_run()
    run.start()
    run.succeed("triage", {"category": "billing"})
    run.fail("knowledge")  # waits for its retry
    run.advance(3)

    decision = cancel(run.state, STOP, run.now)

    state = decision.state
    assert decision.applied
    assert state.status is WorkflowStatus.CANCELLED
    assert state.status.finished
    assert state.reason == "cancelled by ops: customer withdrew the ticket"
    assert state.finished_at == run.now
    assert {n: t.status for n, t in state.tasks.items()} == {
        "triage": TaskStatus.COMPLETED,
        "knowledge": TaskStatus.CANCELLED,
        "reply": TaskStatus.CANCELLED,
    }
    knowledge = state.tasks["knowledge"]
    assert knowledge.next_attempt_at is None
    assert knowledge.lease_expires_at is None
    assert knowledge.attempts[-1].outcome == "failed"  # closed already; nothing reopened
    # Announced, with no task that may still be running (knowledge waits for a retry).
    assert decision.commands == (AnnounceWorkflowCancelled(STOP.reason, "ops", ()),)
    # Timers stop: the retry that was due produces nothing any more.
    run.advance(60)
    assert due_timers(state, run.now) == []


def test_a_dispatched_task_has_its_attempt_closed_as_cancelled() -> None:
    run = ticket_run()
    run.start()

    running = (run.task("triage"), run.task("knowledge"))

    decision = cancel(run.state, STOP, run.now)

    # The announcement names the attempts an agent may still be running, as dispatched.
    assert decision.commands == (AnnounceWorkflowCancelled(STOP.reason, "ops", running),)
    run.state = decision.state
    triage = run.task("triage")
    assert triage.status is TaskStatus.CANCELLED
    assert triage.attempts[-1].outcome == "cancelled"
    assert triage.attempts[-1].finished_at == run.now


def test_cancelling_closes_an_open_escalation_and_audits_it_as_the_canceller() -> None:
    run, escalation = escalated_draft()
    run.advance(10)

    decision = cancel(run.state, STOP, run.now)

    closed = decision.state.escalations[escalation.id]
    assert closed.status is EscalationStatus.RESOLVED
    assert closed.resolved_at == run.now
    assert closed.decision is None
    assert decision.state.tasks["draft"].status is TaskStatus.CANCELLED
    assert decision.commands == (
        AnnounceWorkflowCancelled(STOP.reason, "ops", ()),
        RecordReviewEvent(closed, "resolved", "ops", {"cause": CANCELLED, "reason": STOP.reason}),
    )
    # A reviewer's decision on it afterwards is not applied.
    run.state = decision.state
    late = decide(run, escalation, "approve")
    assert not late.applied
    assert late.note == "workflow already cancelled"


def test_an_unplanned_workflow_can_be_cancelled_and_is_never_planned() -> None:
    run = ticket_run()

    _cancel(run)

    assert run.state.status is WorkflowStatus.CANCELLED
    planned = run.start()
    assert not planned.applied
    assert planned.commands == ()
    assert run.state.tasks == {}


def test_a_finished_workflow_is_refused_naming_its_status() -> None:
    run = ticket_run()
    run.start()
    run.succeed("triage", {"category": "billing"})
    run.succeed("knowledge", {"articles": []})
    run.succeed("reply", {"text": "done"})
    assert run.state.status is WorkflowStatus.COMPLETED

    refusal = refuse_cancel(run.state)
    decision = cancel(run.state, STOP, run.now)

    assert refusal is not None
    assert refusal.status is WorkflowStatus.COMPLETED
    assert "already completed" in refusal.message
    assert not decision.applied
    assert decision.state is run.state
    assert decision.note == refusal.message


def test_cancelling_twice_is_refused_as_already_cancelled() -> None:
    run = ticket_run()
    run.start()
    _cancel(run)

    refusal = refuse_cancel(run.state)

    assert refusal is not None
    assert refusal.status is WorkflowStatus.CANCELLED


def test_a_late_result_after_cancelling_is_not_applied() -> None:
    run = ticket_run()
    run.start()
    _cancel(run)
    before = run.state

    succeeded = run.succeed("triage", {"category": "billing"})
    failed = run.fail("knowledge")

    for late in (succeeded, failed):
        assert not late.applied
        assert late.note == "workflow already cancelled"
        assert late.commands == ()
    assert run.state == before
    assert set(statuses(run).values()) == {TaskStatus.CANCELLED}


def test_a_late_result_of_an_escalated_step_is_not_applied_either() -> None:
    run, _ = escalated_draft()
    _cancel(run)

    late = report(run, "draft", {"text": "again"}, attempt=1)

    assert not late.applied
    assert run.state.status is WorkflowStatus.CANCELLED
