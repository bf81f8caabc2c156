"""Exhausted tasks in the state machine: the last dispatch is dead-lettered, the workflow
points to it, and a result of that attempt (its replay ran) resumes the workflow. Pure: no
fixtures, a clock only the test moves."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.workflow.machine import dispatch_id
from orchestrator.workflow.messages import (
    AnnounceTaskEscalated,
    AnnounceWorkflowCompleted,
    AnnounceWorkflowFailed,
    DeadLetterTask,
    DispatchTask,
    LeaseExpired,
    RecordReviewEvent,
    RetryDue,
)
from orchestrator.workflow.state import (
    Attempt,
    DeadLetter,
    TaskError,
    TaskStatus,
    WorkflowStatus,
)
from tests.orchestrator.workflow.harness import (
    SINGLE,
    T0,
    Run,
    dead_letter_of,
    dead_lettered,
    dispatched_steps,
    load_playbook,
    statuses,
    ticket_run,
)
from tests.orchestrator.workflow.test_policy_approvals import GOVERNED, asking
from tests.orchestrator.workflow.test_review import REVIEWED, decide, open_escalation_of

BAD = TaskError("RuntimeError", "bad input", False)


def _failed_ticket() -> Run:
    """The ticket workflow failed on `knowledge` (bad input) while `triage` was running."""
    run = ticket_run()
    run.start()
    run.advance(5)
    run.fail("knowledge", retryable=False, message="bad input")
    return run


def test_dispatch_ids_are_stable_per_task_and_attempt() -> None:
    assert dispatch_id("task-1", 2) == dispatch_id("task-1", 2)
    assert len({dispatch_id("task-1", 1), dispatch_id("task-1", 2), dispatch_id("t-2", 1)}) == 3


def test_an_exhausted_task_dead_letters_its_last_dispatch_before_the_workflow_fails() -> None:
    run = ticket_run()
    run.start()
    run.advance(1)
    run.fail("triage", message="first")
    first_failure = run.now
    for _ in range(2):
        run.advance(10)
        run.apply(RetryDue(run.task("triage").id))
        last_dispatch = run.now
        run.advance(3)
        decision = run.fail("triage", message="still broken")

    task = run.task("triage")
    dead, announce = decision.commands
    assert dead == DeadLetterTask(
        DispatchTask(task, last_dispatch + timedelta(seconds=30)),  # the step's timeout
        TaskError("RuntimeError", "still broken", True),
        attempts=3,
        first_failure=first_failure,
        last_failure=run.now,
    )
    assert dead.dispatch.dispatched_at == last_dispatch
    assert (task.attempt, task.input) == (3, {"subject": "Refund please"})
    assert isinstance(announce, AnnounceWorkflowFailed)
    assert announce.dead_letter == run.state.dead_letter


def test_the_workflow_points_to_the_dead_letter_in_its_state_and_reason() -> None:
    run = _failed_ticket()

    task = run.task("knowledge")
    letter = DeadLetter("waypost.tasks.knowledge.dlq", dispatch_id(task.id, 1), task.id, 1)
    assert run.state.status is WorkflowStatus.FAILED
    assert run.state.dead_letter == letter
    assert run.state.reason == (
        "step 'knowledge' failed and cannot be retried: RuntimeError: bad input; "
        f"dead-lettered to waypost.tasks.knowledge.dlq as event {letter.event_id}: "
        "fix and replay it to resume"
    )


def test_an_exhausted_lease_is_dead_lettered_too() -> None:
    text = SINGLE.replace("timeout: 10s", "timeout: 10s\n    retries: 0")
    run = Run(load_playbook(text))
    run.start()
    run.advance(10)

    decision = run.apply(LeaseExpired(run.task("only").id, 1))

    (dead,) = [c for c in decision.commands if isinstance(c, DeadLetterTask)]
    assert dead.error.type == "LeaseExpired"
    assert (dead.first_failure, dead.last_failure, dead.dispatch.deadline) == (
        run.now,
        run.now,
        T0 + timedelta(seconds=10),
    )
    assert run.state.dead_letter == dead_letter_of(run, "only")


def test_a_replayed_success_resumes_the_workflow_and_runs_the_steps_after_it() -> None:
    run = _failed_ticket()
    run.advance(60)

    decision = run.succeed("knowledge", {"articles": ["kb-1"]}, attempt=1)

    assert decision.applied
    assert run.state.status is WorkflowStatus.RUNNING
    assert (run.state.reason, run.state.failed_step, run.state.error) == (None, None, None)
    assert (run.state.dead_letter, run.state.finished_at) == (None, None)
    knowledge = run.task("knowledge")
    assert (knowledge.status, knowledge.output, knowledge.error) == (
        TaskStatus.COMPLETED,
        {"articles": ["kb-1"]},
        None,
    )
    # triage, cancelled by the failure, runs again; reply still waits for it.
    assert dispatched_steps(decision) == ["triage"]
    assert statuses(run)["reply"] is TaskStatus.PENDING
    run.succeed("triage", {"category": "billing"})
    run.succeed("reply", {"text": "Refunded."})
    assert run.state.status is WorkflowStatus.COMPLETED
    assert run.state.output == {"category": "billing", "reply": "Refunded."}


def test_the_replayed_attempt_is_recorded_as_completed_when_its_result_arrived() -> None:
    run = _failed_ticket()
    run.advance(60)

    run.succeed("knowledge", attempt=1)

    assert run.task("knowledge").attempts == (
        Attempt(1, T0, T0 + timedelta(seconds=65), "completed", None),
    )
    assert run.task("knowledge").finished_at == run.now


def test_cancelled_tasks_run_again_as_fresh_attempts_with_a_whole_retry_budget() -> None:
    run = ticket_run()
    run.start()
    run.fail("triage")  # triage waits for its second attempt
    run.advance(10)
    run.apply(RetryDue(run.task("triage").id))
    run.fail("knowledge", retryable=False)
    assert run.task("triage").status is TaskStatus.CANCELLED
    run.advance(60)

    decision = run.succeed("knowledge", attempt=1)

    triage = run.task("triage")
    assert decision.commands == (DispatchTask(triage, run.now + timedelta(seconds=30)),)
    assert (triage.status, triage.attempt, triage.max_attempts) == (TaskStatus.DISPATCHED, 3, 5)
    assert [a.outcome for a in triage.attempts] == ["failed", "cancelled", None]
    assert triage.finished_at is None


def test_a_late_result_of_an_attempt_the_failure_cancelled_is_ignored_after_the_replay() -> None:
    run = ticket_run()
    run.start()
    run.fail("knowledge", retryable=False)  # triage's attempt 1 is cancelled, still running
    run.advance(60)
    run.succeed("knowledge", attempt=1)  # the replay: triage runs again as attempt 2
    assert run.task("triage").attempt == 2
    before = run.state

    late = run.succeed("triage", attempt=1)

    assert not late.applied
    assert run.state is before
    assert run.task("triage").status is TaskStatus.DISPATCHED


def test_the_last_step_replayed_completes_the_workflow() -> None:
    run = Run(load_playbook(SINGLE), {"text": "bad"})
    run.start()
    run.fail("only", retryable=False)

    decision = run.succeed("only", {"text": "fixed"}, attempt=1)

    assert run.state.status is WorkflowStatus.COMPLETED
    assert run.state.output == {"only": {"text": "fixed"}}
    (announce,) = decision.commands
    assert isinstance(announce, AnnounceWorkflowCompleted)


def test_a_replayed_result_still_waits_for_a_reviewer_when_the_step_says_so() -> None:
    run = Run(load_playbook(REVIEWED), {"topic": "t"})
    run.start()
    run.fail("draft", retryable=False)

    decision = run.succeed("draft", {"text": "unsure"}, attempt=1)  # confidence 0.75 < 0.8

    assert run.state.status is WorkflowStatus.RUNNING
    assert run.task("draft").status is TaskStatus.AWAITING_REVIEW
    assert run.task("draft").finished_at is None
    assert any(isinstance(c, AnnounceTaskEscalated) for c in decision.commands)
    assert run.task("publish").status is TaskStatus.PENDING


def test_a_replay_stopping_at_an_action_needing_approval_waits_for_a_reviewer() -> None:
    # The refund failed in a way retrying cannot fix and was dead-lettered. An analyst
    # replayed it; this time the agent reaches the refund, which a policy holds for a
    # reviewer's approval: that is an escalation, like any result, not a failure.
    run = Run(load_playbook(GOVERNED), {"amount": 120})
    run.start()
    run.fail("refund", retryable=False, message="amount missing")
    assert run.state.status is WorkflowStatus.FAILED
    run.advance(60)

    decision = asking(run)  # the result of the dead-lettered attempt 1

    escalation = open_escalation_of(run, "refund")
    assert (escalation.kind, escalation.attempt) == ("policy_approval", 1)
    assert decision.commands == (
        AnnounceTaskEscalated(escalation),
        RecordReviewEvent(escalation, "opened", "waypost", {"reason": escalation.reason}),
    )
    assert (run.state.status, run.state.dead_letter, run.state.reason) == (
        WorkflowStatus.RUNNING,
        None,
        None,
    )
    refund = run.task("refund")
    assert refund.status is TaskStatus.AWAITING_REVIEW
    assert [a.outcome for a in refund.attempts] == ["approval_required"]
    # Approved, the step runs again with the approval.
    decide(run, escalation, "approve")
    assert (run.task("refund").status, run.task("refund").attempt) == (TaskStatus.DISPATCHED, 2)


def test_a_replay_that_fails_again_is_dead_lettered_again_and_the_workflow_stays_failed() -> None:
    run = _failed_ticket()
    failed_at = run.now
    run.advance(60)

    decision = run.fail("knowledge", retryable=False, attempt=1, message="still bad")

    error = TaskError("RuntimeError", "still bad", False)
    letter = dead_letter_of(run, "knowledge")
    (dead,) = decision.commands  # no second workflow.failed: the workflow stays failed
    assert isinstance(dead, DeadLetterTask)
    assert (dead.error, dead.attempts, dead.first_failure, dead.last_failure) == (
        error,
        1,
        run.now,
        run.now,
    )
    assert run.state.status is WorkflowStatus.FAILED
    assert (run.state.dead_letter, run.state.error) == (letter, error)
    assert run.state.reason == dead_lettered(
        "step 'knowledge' failed and cannot be retried: RuntimeError: still bad", letter
    )
    knowledge = run.task("knowledge")
    assert knowledge.attempts == (Attempt(1, T0, run.now, "failed", error),)
    assert run.state.finished_at == failed_at
    # The workflow can still be resumed by a replay that works.
    run.succeed("knowledge", attempt=1)
    assert run.state.status is WorkflowStatus.RUNNING


def test_a_replayed_success_delivered_twice_is_applied_once() -> None:
    run = _failed_ticket()
    run.succeed("knowledge", attempt=1)
    after = run.state

    again = run.succeed("knowledge", attempt=1)

    assert not again.applied
    assert run.state is after


def test_other_results_for_a_failed_workflow_are_still_ignored() -> None:
    run = ticket_run()
    run.start()
    run.fail("knowledge")
    run.advance(10)
    run.apply(RetryDue(run.task("knowledge").id))
    run.fail("knowledge", retryable=False)  # dead-lettered at attempt 2
    before = run.state

    earlier = run.succeed("knowledge", attempt=1)
    cancelled = run.succeed("triage", attempt=1)
    later = run.succeed("knowledge", attempt=3)

    assert [d.applied for d in (earlier, cancelled, later)] == [False, False, False]
    assert earlier.note == "workflow already failed"
    assert run.state is before


def test_a_workflow_that_failed_without_a_dead_letter_is_not_resumed() -> None:
    run = Run(load_playbook(REVIEWED), {"topic": "t"})
    run.start()
    failed = run.state.evolve(status=WorkflowStatus.FAILED, reason="rejected")
    run.state = failed

    decision = run.succeed("draft", attempt=1)

    assert not decision.applied
    assert run.state is failed
