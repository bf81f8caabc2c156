"""The human fallback in the state machine: when every attempt of a step with
``on_failure: escalate`` failed, a reviewer supplies the output, retries or rejects.
Pure: no fixtures, a clock only the test moves."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.workflow.escalation import canonical_digest
from orchestrator.workflow.messages import (
    AnnounceTaskEscalated,
    DispatchTask,
    RecordReviewEvent,
    RetryDue,
    ReviewDue,
)
from orchestrator.workflow.review import FALLBACK
from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    TaskError,
    TaskStatus,
    WorkflowStatus,
)
from tests.orchestrator.workflow.harness import T0
from tests.orchestrator.workflow.resilience import (
    ESCALATING,
    FALLING_BACK,
    BreakerRun,
    open_circuit,
    run_of,
)
from tests.orchestrator.workflow.test_review import decide, open_escalation_of

REASON = (
    "every attempt failed: RuntimeError: still down; decide: retry, edit an output by "
    "hand, or reject"
)


def failed_everywhere(text: str = ESCALATING) -> tuple[BreakerRun, EscalationState]:
    """A run whose `fetch` failed both attempts (at T0 and T0 + 2 s) and waits for a person."""
    run = run_of(text)
    run.start()
    run.fail("fetch", message="down")
    run.advance(1)
    run.apply(RetryDue(run.task("fetch").id))
    run.advance(1)
    run.fail("fetch", message="still down")
    return run, open_escalation_of(run, "fetch")


def test_every_attempt_failed_opens_a_fallback_escalation_instead_of_failing() -> None:
    run = run_of(ESCALATING)
    run.start()
    run.fail("fetch", message="down")
    run.advance(1)
    run.apply(RetryDue(run.task("fetch").id))
    run.advance(1)

    decision = run.fail("fetch", message="still down")

    escalation = open_escalation_of(run, "fetch")
    task = run.task("fetch")
    assert decision.commands == (
        AnnounceTaskEscalated(escalation),
        RecordReviewEvent(escalation, "opened", "waypost", {"reason": REASON}),
    )
    assert run.state.status is WorkflowStatus.RUNNING
    assert run.state.dead_letter is None
    assert (task.status, task.proposal, task.attempt) == (TaskStatus.AWAITING_REVIEW, None, 2)
    assert task.error == TaskError("RuntimeError", "still down")
    assert [a.outcome for a in task.attempts] == ["failed", "failed"]
    assert (escalation.kind, escalation.reason, escalation.attempt) == (FALLBACK, REASON, 2)
    assert (escalation.group, escalation.priority) == ("rescuers", 1)
    assert escalation.due_at == run.now + timedelta(hours=1)
    assert run.task("use").status is TaskStatus.PENDING


def test_the_fallback_escalation_shows_the_error_and_every_attempt() -> None:
    run, escalation = failed_everywhere()

    assert escalation.content == {
        "workflow_id": run.state.id,
        "goal_type": "escalating",
        "step": "fetch",
        "capability": "primary",
        "attempt": 2,
        "goal_input": {"text": "hello"},
        "task_input": {"text": "hello"},
        "output": None,
        "confidence": None,
        "reasoning": [],
        "error": {"type": "RuntimeError", "message": "still down", "retryable": True},
        "attempts": [
            {
                "number": 1,
                "capability": "primary",
                "outcome": "failed",
                "error": {"type": "RuntimeError", "message": "down", "retryable": True},
            },
            {
                "number": 2,
                "capability": "primary",
                "outcome": "failed",
                "error": {"type": "RuntimeError", "message": "still down", "retryable": True},
            },
        ],
        "reason": REASON,
    }
    assert escalation.digest == canonical_digest(escalation.content)


def test_a_fallback_capability_is_tried_before_a_person_is_asked() -> None:
    text = ESCALATING.replace(
        "    on_failure: escalate", "    on_failure: escalate\n    fallback: {capability: backup}"
    )
    run = run_of(text)
    run.start()
    run.fail("fetch", retryable=False, message="primary refuses")

    assert (run.task("fetch").capability, run.task("fetch").status) == (
        "backup",
        TaskStatus.DISPATCHED,
    )
    run.fail("fetch", retryable=False, message="backup refuses")

    escalation = open_escalation_of(run, "fetch")
    assert escalation.kind == FALLBACK
    assert escalation.content["capability"] == "backup"
    assert [a["capability"] for a in escalation.content["attempts"]] == ["primary", "backup"]


def test_a_step_without_on_failure_still_fails_the_workflow() -> None:
    run = run_of(FALLING_BACK)
    run.start()
    run.fail("fetch", retryable=False)
    run.fail("fetch", retryable=False)

    assert run.state.status is WorkflowStatus.FAILED
    assert run.state.escalations == {}


# --- the reviewer decides ------------------------------------------------------------------


def test_an_edit_supplies_the_output_by_hand_and_the_workflow_goes_on() -> None:
    run, escalation = failed_everywhere()
    run.advance(60)

    decision = decide(run, escalation, "edit", output={"text": "typed by a person"})

    fetch = run.task("fetch")
    assert decision.applied
    assert (fetch.status, fetch.output, fetch.error) == (
        TaskStatus.COMPLETED,
        {"text": "typed by a person"},
        None,
    )
    assert run.state.escalations[escalation.id].status is EscalationStatus.RESOLVED
    assert [c.task.step for c in decision.commands if isinstance(c, DispatchTask)] == ["use"]
    assert run.task("use").input == {"fetched": "typed by a person"}


def test_an_edit_that_breaks_the_output_schema_is_not_applied() -> None:
    run, escalation = failed_everywhere()

    decision = decide(run, escalation, "edit", output={"txt": "typo"})

    assert not decision.applied
    assert decision.note is not None
    assert "the edited output breaks the step's output schema: output: " in decision.note


def test_a_retry_runs_the_step_again_from_its_own_capability_with_a_whole_budget() -> None:
    text = ESCALATING.replace(
        "    on_failure: escalate", "    on_failure: escalate\n    fallback: {capability: backup}"
    )
    run = run_of(text)
    run.start()
    run.fail("fetch", retryable=False)
    run.fail("fetch", retryable=False)
    escalation = open_escalation_of(run, "fetch")
    run.advance(30)

    decision = decide(run, escalation, "retry")

    fetch = run.task("fetch")
    assert decision.applied
    assert isinstance(decision.commands[-1], DispatchTask)
    assert (fetch.status, fetch.capability, fetch.attempt) == (TaskStatus.DISPATCHED, "primary", 3)
    assert (fetch.max_attempts, fetch.first_valid_attempt, fetch.error) == (4, 3, None)
    # ...and when that fails again, its fallback, then a person again.
    run.fail("fetch", retryable=False)
    assert run.task("fetch").capability == "backup"
    run.fail("fetch", retryable=False)
    assert open_escalation_of(run, "fetch").id != escalation.id


def test_a_retry_while_the_circuit_is_open_waits_for_it() -> None:
    run, escalation = failed_everywhere()
    run.book.circuits["primary"] = open_circuit("primary", until_s=100)

    decide(run, escalation, "retry")

    fetch = run.task("fetch")
    assert (fetch.status, fetch.attempt) == (TaskStatus.RETRY_WAIT, 2)
    assert fetch.next_attempt_at == T0 + timedelta(seconds=100)


def test_a_rejection_does_the_steps_on_reject() -> None:
    run, escalation = failed_everywhere()

    decision = decide(run, escalation, "reject", reason="the source is gone for good")

    assert decision.applied
    assert run.state.status is WorkflowStatus.FAILED
    assert run.state.reason == ("reviewer ada rejected step 'fetch': the source is gone for good")
    assert run.task("fetch").error == TaskError(
        "Rejected", "reviewer ada rejected step 'fetch': the source is gone for good", False
    )


def test_there_is_nothing_to_approve() -> None:
    run, escalation = failed_everywhere()

    decision = decide(run, escalation, "approve", decision_id="d-1")

    assert not decision.applied
    assert decision.note == (
        "decision d-1: every attempt of step 'fetch' failed, so there is no output to "
        "approve; edit (supply the output), retry or reject"
    )
    assert run.task("fetch").status is TaskStatus.AWAITING_REVIEW


def test_a_missed_deadline_does_the_reviews_on_timeout() -> None:
    text = ESCALATING.replace(
        "review: {group: rescuers, priority: 1, sla: 1h}",
        "review: {sla: 1h, on_timeout: {action: reject}}",
    )
    run, escalation = failed_everywhere(text)
    run.advance(3600)

    run.apply(ReviewDue(escalation.id))

    assert run.state.status is WorkflowStatus.FAILED
    assert run.state.reason == "no reviewer decided step 'fetch' within its SLA of 3600 s"
