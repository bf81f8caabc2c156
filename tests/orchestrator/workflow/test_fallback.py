"""Fallback capabilities and circuit breakers in the state machine: where a task goes when
its capability's attempts ran out or its circuit is open, and what each attempt's outcome
tells the circuit. Pure: no fixtures, a clock only the test moves."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.workflow.breaker import Circuit, CircuitState
from orchestrator.workflow.messages import (
    AnnounceWorkflowFailed,
    DeadLetterTask,
    DispatchTask,
    LeaseExpired,
    RetryDue,
)
from orchestrator.workflow.state import Attempt, TaskError, TaskStatus, WorkflowStatus
from orchestrator.workflow.transitions import CIRCUIT_OPEN
from tests.orchestrator.workflow.harness import SINGLE, T0, dead_letter_of, dead_lettered
from tests.orchestrator.workflow.resilience import (
    FALLING_BACK,
    BreakerRun,
    open_circuit,
    run_of,
)


def exhaust_primary(run: BreakerRun) -> None:
    """Fail both attempts `fetch` has on `primary` (the retry a second later)."""
    run.fail("fetch", message="primary down")
    run.advance(1)
    run.apply(RetryDue(run.task("fetch").id))
    run.advance(1)


# --- the fallback takes over -------------------------------------------------------------------


def test_a_step_whose_attempts_ran_out_goes_to_its_fallback_at_once() -> None:
    run = run_of(FALLING_BACK)
    run.start()
    exhaust_primary(run)

    decision = run.fail("fetch", message="primary down")

    task = run.task("fetch")
    assert decision.applied
    assert decision.commands == (DispatchTask(task, run.now + timedelta(seconds=10)),)
    assert (task.status, task.capability, task.attempt) == (TaskStatus.DISPATCHED, "backup", 3)
    assert task.max_attempts == 4  # two more, the fallback's first and its one retry
    assert task.input == {"text": "hello"}
    assert [a.capability for a in task.attempts] == [None, None, "backup"]
    assert task.error == TaskError("RuntimeError", "primary down")
    assert run.state.status is WorkflowStatus.RUNNING


def test_the_fallbacks_output_completes_the_step_and_the_workflow_goes_on() -> None:
    run = run_of(FALLING_BACK)
    run.start()
    exhaust_primary(run)
    run.fail("fetch")

    decision = run.succeed("fetch", {"text": "from the backup"})

    fetch = run.task("fetch")
    assert (fetch.status, fetch.capability, fetch.output) == (
        TaskStatus.COMPLETED,
        "backup",
        {"text": "from the backup"},
    )
    assert [c.task.step for c in decision.commands if isinstance(c, DispatchTask)] == ["use"]
    assert run.task("use").input == {"fetched": "from the backup"}


def test_the_fallback_retries_with_backoff_like_the_step() -> None:
    run = run_of(FALLING_BACK)
    run.start()
    exhaust_primary(run)
    run.fail("fetch")

    run.fail("fetch", message="backup hiccup")
    waiting = run.task("fetch")
    run.advance(1)
    retried = run.apply(RetryDue(waiting.id))

    assert (waiting.status, waiting.capability) == (TaskStatus.RETRY_WAIT, "backup")
    assert (run.task("fetch").capability, run.task("fetch").attempt) == ("backup", 4)
    assert isinstance(retried.commands[0], DispatchTask)


def test_when_the_fallback_runs_out_too_the_workflow_fails_on_its_dead_letter() -> None:
    run = run_of(FALLING_BACK)
    run.start()
    exhaust_primary(run)
    run.fail("fetch")
    run.fail("fetch", message="backup down")
    run.advance(1)
    run.apply(RetryDue(run.task("fetch").id))

    decision = run.fail("fetch", message="backup down")

    task = run.task("fetch")
    letter = dead_letter_of(run, "fetch")
    assert letter.topic == "waypost.tasks.backup.dlq"
    dead, failed = decision.commands
    assert isinstance(dead, DeadLetterTask)
    assert dead.dispatch.task.capability == "backup"
    assert isinstance(failed, AnnounceWorkflowFailed)
    assert (task.status, task.attempt) == (TaskStatus.FAILED, 4)
    assert run.state.reason == dead_lettered(
        "step 'fetch' failed after 4 attempt(s) (on its fallback backup too): "
        "RuntimeError: backup down",
        letter,
    )


def test_a_failure_retrying_cannot_fix_goes_to_the_fallback_too() -> None:
    run = run_of(FALLING_BACK)
    run.start()

    run.fail("fetch", retryable=False, message="cannot parse")

    task = run.task("fetch")
    assert (task.status, task.capability, task.attempt, task.max_attempts) == (
        TaskStatus.DISPATCHED,
        "backup",
        2,
        3,
    )


def test_a_step_without_a_fallback_fails_as_before() -> None:
    run = run_of(SINGLE)
    run.start()
    run.fail("only", retryable=False, message="bad input")

    assert run.state.status is WorkflowStatus.FAILED
    assert run.task("only").capability == "echo"


def test_a_late_result_of_the_primary_still_wins() -> None:
    run = run_of(FALLING_BACK)
    run.start()
    exhaust_primary(run)
    run.fail("fetch")

    run.succeed("fetch", {"text": "late primary"}, attempt=2)

    fetch = run.task("fetch")
    assert (fetch.status, fetch.output) == (TaskStatus.COMPLETED, {"text": "late primary"})
    assert [a.outcome for a in fetch.attempts] == ["failed", "completed", "superseded"]


# --- open circuits ----------------------------------------------------------------------------


def test_while_the_primarys_circuit_is_open_a_new_task_goes_straight_to_the_fallback() -> None:
    run = run_of(FALLING_BACK, open_circuit("primary"))

    decision = run.start()

    task = run.task("fetch")
    assert [c.task.capability for c in decision.commands if isinstance(c, DispatchTask)] == [
        "backup"
    ]
    assert (task.capability, task.attempt, task.max_attempts) == ("backup", 1, 2)
    assert task.attempts == (Attempt(1, T0, capability="backup"),)


def test_a_retry_due_while_the_circuit_is_open_goes_to_the_fallback() -> None:
    run = run_of(FALLING_BACK)
    run.start()
    run.fail("fetch")
    run.book.circuits["primary"] = open_circuit("primary", until_s=100)
    run.advance(1)

    run.apply(RetryDue(run.task("fetch").id))

    task = run.task("fetch")
    # The primary's unused retry is given up; the fallback gets its own two attempts.
    assert (task.status, task.capability, task.attempt, task.max_attempts) == (
        TaskStatus.DISPATCHED,
        "backup",
        2,
        3,
    )


def test_without_a_fallback_a_task_waits_for_the_circuit_without_spending_an_attempt() -> None:
    run = run_of(SINGLE, open_circuit("echo", until_s=30))

    decision = run.start()

    task = run.task("only")
    assert [c for c in decision.commands if isinstance(c, DispatchTask)] == []
    assert (task.status, task.attempt, task.attempts) == (TaskStatus.RETRY_WAIT, 0, ())
    assert task.next_attempt_at == T0 + timedelta(seconds=30)
    assert task.error is not None
    assert task.error.type == CIRCUIT_OPEN
    assert "the circuit of capability 'echo' is open until" in task.error.message


def test_a_waiting_task_becomes_the_probe_once_the_circuit_may_be_tried() -> None:
    run = run_of(SINGLE, open_circuit("echo", until_s=30))
    run.start()
    run.advance(30)

    decision = run.apply(RetryDue(run.task("only").id))

    task = run.task("only")
    assert isinstance(decision.commands[0], DispatchTask)
    assert (task.status, task.attempt) == (TaskStatus.DISPATCHED, 1)
    circuit = run.book.get("echo")
    assert circuit.state is CircuitState.HALF_OPEN
    assert circuit.probe_task_id == task.id
    assert circuit.probe_until == run.now + timedelta(seconds=10)  # its lease


def test_the_probes_success_closes_the_circuit() -> None:
    run = run_of(SINGLE, open_circuit("echo", until_s=30))
    run.start()
    run.advance(30)
    run.apply(RetryDue(run.task("only").id))

    run.succeed("only")

    assert run.book.get("echo").state is CircuitState.CLOSED
    assert run.state.status is WorkflowStatus.COMPLETED


def test_when_both_circuits_are_open_the_task_waits_on_the_fallbacks() -> None:
    run = run_of(FALLING_BACK, open_circuit("primary"), open_circuit("backup", until_s=20))

    run.start()

    task = run.task("fetch")
    assert (task.status, task.capability) == (TaskStatus.RETRY_WAIT, "backup")
    assert task.next_attempt_at == T0 + timedelta(seconds=20)


# --- what the circuits are told -----------------------------------------------------------------


def test_retryable_failures_and_expired_leases_count_and_open_the_circuit() -> None:
    run = run_of(SINGLE.replace("timeout: 10s", "timeout: 10s\n    retries: 5"))
    run.start()
    run.fail("only")
    run.advance(1)
    run.apply(RetryDue(run.task("only").id))
    run.advance(10)
    run.apply(LeaseExpired(run.task("only").id, 2))
    assert run.book.get("echo").failures == (T0, T0 + timedelta(seconds=11))
    run.advance(2)
    run.apply(RetryDue(run.task("only").id))

    run.fail("only")

    circuit = run.book.get("echo")
    assert circuit.state is CircuitState.OPEN
    assert circuit.last_error == "RuntimeError: boom"
    assert [(e.kind, e.capability) for e in run.book.events] == [("failed", "echo")] * 3
    # Its retry, when due, waits for the circuit rather than spending an attempt.
    run.advance(5)
    run.apply(RetryDue(run.task("only").id))
    assert run.task("only").attempt == 3
    assert run.task("only").error is not None
    assert run.task("only").error.type == CIRCUIT_OPEN


def test_a_failure_retrying_cannot_fix_is_not_counted() -> None:
    run = run_of(SINGLE)
    run.start()

    run.fail("only", retryable=False)

    assert run.book.get("echo").failures == ()
    assert run.book.events == []


def test_the_fallbacks_failures_count_against_the_fallbacks_circuit() -> None:
    run = run_of(FALLING_BACK)
    run.start()
    exhaust_primary(run)
    run.fail("fetch")

    run.fail("fetch")

    assert len(run.book.get("primary").failures) == 2
    assert len(run.book.get("backup").failures) == 1


def test_a_late_success_is_reported_for_the_capability_its_attempt_went_to() -> None:
    run = run_of(FALLING_BACK)
    run.start()
    exhaust_primary(run)
    run.fail("fetch")  # on the fallback now
    run.book.circuits["primary"] = Circuit(
        "primary",
        CircuitState.HALF_OPEN,
        probe_task_id=run.task("fetch").id,
        probe_until=run.now + timedelta(seconds=10),
    )

    run.succeed("fetch", attempt=2)  # the primary's, arriving late

    assert run.book.get("primary").state is CircuitState.CLOSED
