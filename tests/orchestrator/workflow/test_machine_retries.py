"""The workflow state machine: failed attempts, retries with backoff, leases and timers."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.workflow.machine import due_timers
from orchestrator.workflow.messages import (
    AnnounceWorkflowFailed,
    DeadLetterTask,
    DispatchTask,
    LeaseExpired,
    RetryDue,
)
from orchestrator.workflow.retry import RetryPolicy
from orchestrator.workflow.state import (
    Attempt,
    TaskError,
    TaskStatus,
    WorkflowStatus,
)
from tests.orchestrator.workflow.harness import (
    CONDITIONAL,
    SINGLE,
    T0,
    TICKET,
    Run,
    dead_letter_of,
    dead_lettered,
    load_playbook,
    statuses,
    ticket_run,
)

# --- failures, retries and leases ---------------------------------------------------------


def test_a_retryable_failure_waits_for_a_retry_within_the_backoff_window() -> None:
    # Step backoff 2s..5s: the first retry waits between 1 s and 2 s.
    for draw, expected in ((0.0, 1.0), (0.5, 1.5), (0.999, 1.999)):
        run = Run(load_playbook(TICKET), {"subject": "s"}, random=lambda d=draw: d)
        run.start()
        run.advance(4)

        decision = run.fail("triage")

        task = run.task("triage")
        assert decision.applied
        assert decision.commands == ()
        assert task.status is TaskStatus.RETRY_WAIT
        assert task.next_attempt_at is not None
        wait = (task.next_attempt_at - run.now).total_seconds()
        assert wait == expected
        assert 1.0 <= wait <= 2.0
        assert task.lease_expires_at is None
        assert task.error == TaskError("RuntimeError", "boom", True)
        assert run.state.status is WorkflowStatus.RUNNING


def test_without_a_step_backoff_the_environments_policy_applies() -> None:
    run = Run(load_playbook(SINGLE), random=lambda: 1.0, retry=RetryPolicy(initial_s=8, max_s=9))
    run.start()

    run.fail("only")

    assert run.task("only").next_attempt_at == T0 + timedelta(seconds=8)


def test_a_step_backoff_field_left_out_comes_from_the_environments_policy() -> None:
    partial = SINGLE.replace("capability: echo", "capability: echo\n    backoff: {initial: 4s}")
    assert "backoff" in partial
    run = Run(load_playbook(partial), random=lambda: 1.0, retry=RetryPolicy(initial_s=1, max_s=6))
    run.start()

    run.fail("only")  # first retry: initial 4 s from the step
    first = run.task("only").next_attempt_at
    run.advance(10)
    run.apply(RetryDue(run.task("only").id))
    run.fail("only")  # second: 8 s capped at the environment's max of 6 s

    assert first == T0 + timedelta(seconds=4)
    assert run.task("only").next_attempt_at == run.now + timedelta(seconds=6)


def test_each_retry_waits_longer_up_to_the_maximum() -> None:
    text = SINGLE.replace("timeout: 10s", "timeout: 10s\n    retries: 5")
    run = Run(load_playbook(text), random=lambda: 1.0, retry=RetryPolicy(initial_s=1, max_s=3))
    run.start()
    waits = []

    for _ in range(4):
        run.fail("only")
        assert run.task("only").next_attempt_at is not None
        waits.append((run.task("only").next_attempt_at - run.now).total_seconds())
        run.advance(waits[-1])
        run.apply(RetryDue(run.task("only").id))

    assert waits == [1.0, 2.0, 3.0, 3.0]


def test_a_retry_is_not_dispatched_before_it_is_due() -> None:
    run = Run(load_playbook(SINGLE), random=lambda: 1.0)
    run.start()
    run.fail("only")
    run.advance(0.999)
    before = run.state

    decision = run.apply(RetryDue(run.task("only").id))

    assert not decision.applied
    assert decision.commands == ()
    assert run.state is before
    assert decision.note == "task only has no retry due"


def test_a_due_retry_dispatches_the_next_attempt_of_the_same_task() -> None:
    run = Run(load_playbook(SINGLE), {"text": "hi"}, random=lambda: 1.0)
    run.start()
    first_id = run.task("only").id
    run.advance(2)
    run.fail("only")
    run.advance(1)

    decision = run.apply(RetryDue(first_id))

    task = run.task("only")
    assert decision.applied
    assert decision.commands == (DispatchTask(task, T0 + timedelta(seconds=13)),)
    assert (task.id, task.status, task.attempt) == (first_id, TaskStatus.DISPATCHED, 2)
    assert task.input == {"text": "hi"}
    assert task.next_attempt_at is None
    assert task.lease_expires_at == T0 + timedelta(seconds=13)


def test_a_retry_for_a_task_that_is_not_waiting_is_ignored() -> None:
    run = Run(load_playbook(SINGLE))
    run.start()

    assert not run.apply(RetryDue(run.task("only").id)).applied
    assert run.task("only").attempt == 1


def test_a_redelivered_failure_is_applied_once() -> None:
    run = Run(load_playbook(SINGLE), random=lambda: 1.0)
    run.start()
    run.fail("only")
    waiting = run.state

    again = run.fail("only", attempt=1)

    assert not again.applied
    assert run.state is waiting
    assert len(run.task("only").attempts) == 1


def test_a_repeated_retry_timer_dispatches_only_once() -> None:
    run = Run(load_playbook(SINGLE), random=lambda: 1.0)
    run.start()
    run.fail("only")
    run.advance(1)
    timer = RetryDue(run.task("only").id)

    first, second = run.apply(timer), run.apply(timer)

    assert len(first.commands) == 1
    assert not second.applied
    assert second.commands == ()
    assert run.task("only").attempt == 2


def test_the_attempt_history_records_every_dispatch_and_outcome() -> None:
    run = Run(load_playbook(SINGLE), random=lambda: 1.0)
    run.start()
    run.advance(1)
    run.fail("only", message="first")
    run.advance(1)
    run.apply(RetryDue(run.task("only").id))
    run.advance(10)
    run.apply(LeaseExpired(run.task("only").id, 2))
    run.advance(2)
    run.apply(RetryDue(run.task("only").id))
    run.advance(1)
    run.succeed("only")

    assert run.task("only").attempts == (
        Attempt(1, T0, T0 + timedelta(seconds=1), "failed", TaskError("RuntimeError", "first")),
        Attempt(
            2,
            T0 + timedelta(seconds=2),
            T0 + timedelta(seconds=12),
            "lease_expired",
            TaskError("LeaseExpired", "no result within 10 s of dispatch"),
        ),
        Attempt(3, T0 + timedelta(seconds=14), T0 + timedelta(seconds=15), "completed", None),
    )


def test_exhausted_attempts_fail_the_workflow_and_cancel_the_rest() -> None:
    run = ticket_run()
    run.start()
    for _ in range(2):
        run.fail("triage")
        run.advance(10)
        run.apply(RetryDue(run.task("triage").id))

    decision = run.fail("triage", message="still broken")

    letter = dead_letter_of(run, "triage")
    reason = dead_lettered(
        "step 'triage' failed after 3 attempt(s): RuntimeError: still broken", letter
    )
    error = TaskError("RuntimeError", "still broken", True)
    assert run.state.status is WorkflowStatus.FAILED
    assert (run.state.reason, run.state.failed_step, run.state.error) == (reason, "triage", error)
    assert run.state.dead_letter == letter
    assert run.state.finished_at == run.now
    dead, announce = decision.commands
    assert isinstance(dead, DeadLetterTask)
    assert announce == AnnounceWorkflowFailed(reason, "triage", error, letter)
    assert statuses(run) == {
        "triage": TaskStatus.FAILED,
        "knowledge": TaskStatus.CANCELLED,
        "reply": TaskStatus.CANCELLED,
    }
    assert run.task("triage").attempt == 3


def test_cancelled_tasks_close_their_open_attempt() -> None:
    run = ticket_run()
    run.start()
    run.advance(5)

    run.fail("triage", retryable=False)

    knowledge = run.task("knowledge")
    assert knowledge.lease_expires_at is None
    assert knowledge.finished_at == run.now
    assert knowledge.attempts == (Attempt(1, T0, run.now, "cancelled", None),)
    assert run.task("reply").attempts == ()


def test_a_task_waiting_for_a_retry_is_cancelled_when_another_step_fails() -> None:
    run = ticket_run()
    run.start()
    run.fail("knowledge")

    run.fail("triage", retryable=False)

    knowledge = run.task("knowledge")
    assert knowledge.status is TaskStatus.CANCELLED
    assert knowledge.next_attempt_at is None
    assert due_timers(run.state, run.now + timedelta(hours=1)) == []


def test_a_non_retryable_failure_fails_at_once() -> None:
    run = ticket_run()
    run.start()

    decision = run.fail("knowledge", retryable=False, message="bad input")

    letter = dead_letter_of(run, "knowledge")
    reason = dead_lettered(
        "step 'knowledge' failed and cannot be retried: RuntimeError: bad input", letter
    )
    assert run.state.status is WorkflowStatus.FAILED
    assert run.state.reason == reason
    assert run.task("knowledge").attempt == 1
    assert run.task("knowledge").status is TaskStatus.FAILED
    assert decision.commands[1:] == (
        AnnounceWorkflowFailed(
            reason, "knowledge", TaskError("RuntimeError", "bad input", False), letter
        ),
    )


def test_a_step_without_retries_fails_on_its_first_retryable_failure() -> None:
    text = SINGLE.replace("timeout: 10s", "timeout: 10s\n    retries: 0")
    run = Run(load_playbook(text))
    run.start()

    run.fail("only")

    assert run.state.reason == dead_lettered(
        "step 'only' failed after 1 attempt(s): RuntimeError: boom", dead_letter_of(run, "only")
    )


def test_a_lease_is_not_expired_before_its_time() -> None:
    run = Run(load_playbook(SINGLE))
    run.start()
    run.advance(9.999)

    decision = run.apply(LeaseExpired(run.task("only").id, 1))

    assert not decision.applied
    assert run.task("only").status is TaskStatus.DISPATCHED


def test_a_lease_expiry_for_another_attempt_is_ignored() -> None:
    run = Run(load_playbook(SINGLE))
    run.start()
    run.advance(60)

    assert not run.apply(LeaseExpired(run.task("only").id, 2)).applied
    assert run.task("only").status is TaskStatus.DISPATCHED


def test_an_expired_lease_is_a_retryable_failure() -> None:
    run = Run(load_playbook(SINGLE), random=lambda: 0.0)
    run.start()
    run.advance(10)

    decision = run.apply(LeaseExpired(run.task("only").id, 1))

    task = run.task("only")
    assert decision.applied
    assert task.status is TaskStatus.RETRY_WAIT
    assert task.error == TaskError("LeaseExpired", "no result within 10 s of dispatch", True)
    assert task.next_attempt_at == run.now + timedelta(seconds=0.5)
    assert task.attempts[0].outcome == "lease_expired"


def test_an_expired_lease_of_an_undelivered_dispatch_is_extended_without_an_attempt() -> None:
    run = Run(load_playbook(SINGLE), random=lambda: 0.0)
    run.start()
    run.advance(10)

    decision = run.apply(LeaseExpired(run.task("only").id, 1, undelivered=True))

    task = run.task("only")
    assert decision.applied
    assert decision.commands == ()  # the waiting dispatch is still the one to deliver
    assert (task.status, task.attempt) == (TaskStatus.DISPATCHED, 1)
    assert task.lease_expires_at == run.now + timedelta(seconds=10)
    assert [a.outcome for a in task.attempts] == [None]


def test_expired_leases_on_the_last_attempt_fail_the_workflow() -> None:
    text = SINGLE.replace("timeout: 10s", "timeout: 10s\n    retries: 1")
    run = Run(load_playbook(text), random=lambda: 1.0)
    run.start()
    run.advance(10)
    run.apply(LeaseExpired(run.task("only").id, 1))
    run.advance(1)
    run.apply(RetryDue(run.task("only").id))
    run.advance(10)

    run.apply(LeaseExpired(run.task("only").id, 2))

    assert run.state.reason == dead_lettered(
        "step 'only' failed after 2 attempt(s): LeaseExpired: no result within 10 s of dispatch",
        dead_letter_of(run, "only"),
    )


def test_a_late_success_while_waiting_for_a_retry_completes_the_task() -> None:
    run = Run(load_playbook(SINGLE), random=lambda: 1.0)
    run.start()
    run.advance(10)
    run.apply(LeaseExpired(run.task("only").id, 1))

    decision = run.succeed("only", {"text": "slow but done"}, attempt=1)

    assert decision.applied
    assert run.task("only").status is TaskStatus.COMPLETED
    assert run.task("only").next_attempt_at is None
    assert run.state.status is WorkflowStatus.COMPLETED
    run.advance(60)
    assert not run.apply(RetryDue(run.task("only").id)).applied


def test_an_earlier_attempts_success_completes_a_redispatched_task() -> None:
    run = Run(load_playbook(SINGLE), random=lambda: 1.0)
    run.start()
    run.advance(10)
    run.apply(LeaseExpired(run.task("only").id, 1))
    run.advance(1)
    run.apply(RetryDue(run.task("only").id))

    decision = run.succeed("only", {"text": "first"}, attempt=1)

    assert decision.applied
    assert run.task("only").output == {"text": "first"}
    assert run.state.status is WorkflowStatus.COMPLETED


def test_every_attempt_of_a_finished_task_is_closed() -> None:
    # Attempt 1 outlives its lease, attempt 2 is dispatched, then attempt 1's late success
    # arrives and wins. Attempt 2 can no longer produce anything the workflow uses, so
    # the history must not show it as still running.
    run = Run(load_playbook(SINGLE), random=lambda: 1.0)
    run.start()
    run.advance(10)
    run.apply(LeaseExpired(run.task("only").id, 1))
    run.advance(1)
    run.apply(RetryDue(run.task("only").id))
    run.advance(1)

    run.succeed("only", {"text": "first"}, attempt=1)

    open_attempts = [a.number for a in run.task("only").attempts if a.finished_at is None]
    assert open_attempts == []


# --- timers -------------------------------------------------------------------------------


def test_due_timers_finds_expired_leases_and_due_retries() -> None:
    run = ticket_run()
    run.random = lambda: 1.0
    run.start()
    run.fail("knowledge")  # retry due at T0 + 2 s
    triage_id, knowledge_id = run.task("triage").id, run.task("knowledge").id

    assert due_timers(run.state, T0 + timedelta(seconds=1.999)) == []
    assert due_timers(run.state, T0 + timedelta(seconds=2)) == [RetryDue(knowledge_id)]
    assert due_timers(run.state, T0 + timedelta(seconds=30)) == [
        LeaseExpired(triage_id, 1),
        RetryDue(knowledge_id),
    ]


def test_due_timers_ignores_finished_and_pending_tasks() -> None:
    run = Run(load_playbook(CONDITIONAL))
    run.start()
    run.succeed("triage", {"urgency": "low"})
    run.succeed("close")

    assert due_timers(run.state, T0 + timedelta(days=1)) == []


def test_applying_due_timers_drives_a_stuck_task_to_its_next_attempt() -> None:
    run = Run(load_playbook(SINGLE), random=lambda: 0.0)
    run.start()
    run.advance(10)

    for timer in due_timers(run.state, run.now):
        run.apply(timer)
    run.advance(0.5)
    commands = [c for t in due_timers(run.state, run.now) for c in run.apply(t).commands]

    assert [(c.task.step, c.task.attempt) for c in commands if isinstance(c, DispatchTask)] == [
        ("only", 2)
    ]
