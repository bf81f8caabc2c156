"""Reviewers' decisions in the state machine: approve, edit, reject (fail, skip, goto),
retry, and decisions that must not be applied (stale, duplicate, not the accepted one)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from orchestrator.workflow.escalation import canonical_digest, escalation_id
from orchestrator.workflow.messages import (
    AnnounceWorkflowCompleted,
    AnnounceWorkflowFailed,
    DecisionMade,
    DispatchTask,
    RecordReviewEvent,
    RetryDue,
)
from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    ReviewDecision,
    TaskError,
    TaskStatus,
    WorkflowStatus,
)
from tests.orchestrator.workflow.harness import (
    Run,
    dispatched_steps,
    load_playbook,
    statuses,
)
from tests.orchestrator.workflow.test_review import (
    decide,
    escalated_draft,
    open_escalation_of,
    rejecting,
    rejecting_run,
    report,
)

# --- approve and edit ----------------------------------------------------------------------


def test_approving_completes_the_task_with_the_proposal_and_runs_what_depends_on_it() -> None:
    run, escalation = escalated_draft()
    run.advance(60)

    decision = decide(run, escalation, "approve", decision_id="d-approve")

    draft = run.task("draft")
    assert decision.applied
    assert draft.status is TaskStatus.COMPLETED
    assert draft.output == {"text": "Refunds take 5 days."}
    assert draft.proposal is None
    assert draft.finished_at == run.now
    resolved = run.state.escalations[escalation.id]
    assert resolved.status is EscalationStatus.RESOLVED
    assert resolved.resolved_at == run.now
    assert resolved.decision is not None
    assert (resolved.decision.id, resolved.decision.action) == ("d-approve", "approve")
    assert decision.commands[0] == RecordReviewEvent(
        resolved, "resolved", "ada", {"action": "approve"}
    )
    assert dispatched_steps(decision) == ["publish"]
    assert run.task("publish").input == {"text": "Refunds take 5 days."}


def test_an_approved_step_completes_the_workflow_with_its_output() -> None:
    run, escalation = escalated_draft()
    decide(run, escalation, "approve")

    decision = report(run, "publish", {"url": "https://example.com/1"})

    assert run.state.status is WorkflowStatus.COMPLETED
    assert run.state.output == {"text": "Refunds take 5 days.", "url": "https://example.com/1"}
    assert isinstance(decision.commands[-1], AnnounceWorkflowCompleted)


def test_an_edit_completes_the_task_with_the_edited_output() -> None:
    run, escalation = escalated_draft()

    decision = decide(run, escalation, "edit", output={"text": "Refunds take 3 days."})

    assert decision.applied
    assert run.task("draft").output == {"text": "Refunds take 3 days."}
    assert run.task("publish").input == {"text": "Refunds take 3 days."}
    resolved = run.state.escalations[escalation.id]
    assert decision.commands[0] == RecordReviewEvent(
        resolved, "resolved", "ada", {"action": "edit"}
    )


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ({"text": ""}, "the edited output breaks the step's output schema: text: "),
        ({"body": "no text"}, '"text" is a required property'),
        ({"text": "ok", "extra": 1}, "Additional properties are not allowed"),
        (None, "an edit needs the edited output"),
    ],
)
def test_an_edit_breaking_the_output_schema_is_not_applied(
    output: dict[str, Any] | None, problem: str
) -> None:
    run, escalation = escalated_draft()
    waiting = run.state

    decision = decide(run, escalation, "edit", output=output, decision_id="d-edit")

    assert not decision.applied
    assert decision.commands == ()
    assert run.state is waiting
    assert decision.note is not None
    assert decision.note.startswith("decision d-edit: ")
    assert problem in decision.note
    assert run.task("draft").status is TaskStatus.AWAITING_REVIEW


def test_a_problem_with_the_whole_edited_output_names_the_output_not_the_input() -> None:
    run, escalation = escalated_draft()
    assert run.playbook is not None
    step = run.playbook.step("draft")

    problems = step.output_problems({"body": "no text"})

    # The reviewer edited an output: "input" points at something they never touched.
    assert {where for where, _ in problems} == {"output"}
    note = decide(run, escalation, "edit", output={"body": "no text"}).note
    assert note is not None
    assert "input:" not in note


def test_without_an_output_schema_any_edited_object_is_accepted() -> None:
    run, escalation = rejecting_run("fail")

    decision = decide(run, escalation, "edit", output={"anything": ["goes"]})

    assert decision.applied
    assert run.task("draft").output == {"anything": ["goes"]}


# --- reject --------------------------------------------------------------------------------


def test_a_rejection_with_on_reject_fail_fails_the_workflow_with_the_reviewers_reason() -> None:
    run, escalation = rejecting_run("fail")

    decision = decide(run, escalation, "reject", reason="made up facts", reviewer="grace")

    why = "reviewer grace rejected step 'draft': made up facts"
    error = TaskError("Rejected", why, retryable=False)
    assert run.state.status is WorkflowStatus.FAILED
    assert (run.state.reason, run.state.failed_step, run.state.error) == (why, "draft", error)
    assert statuses(run) == {
        "research": TaskStatus.COMPLETED,
        "side": TaskStatus.COMPLETED,
        "draft": TaskStatus.FAILED,
        "publish": TaskStatus.CANCELLED,
    }
    assert run.task("draft").proposal is None
    assert run.task("draft").error == error
    resolved = run.state.escalations[escalation.id]
    assert resolved.status is EscalationStatus.RESOLVED
    assert decision.commands == (
        RecordReviewEvent(resolved, "resolved", "grace", {"action": "reject"}),
        AnnounceWorkflowFailed(why, "draft", error),
    )


def test_a_rejection_without_a_reason_is_not_applied() -> None:
    run, escalation = rejecting_run("fail")
    waiting = run.state

    decision = decide(run, escalation, "reject", decision_id="d-why")

    assert not decision.applied
    assert decision.note == "decision d-why: a rejection needs a reason"
    assert run.state is waiting


def test_a_rejection_with_on_reject_skip_skips_the_step_and_carries_on() -> None:
    run, escalation = rejecting_run("skip")

    decision = decide(run, escalation, "reject", reason="not needed")

    assert run.task("draft").status is TaskStatus.SKIPPED
    assert run.task("draft").output is None
    assert run.task("draft").proposal is None
    assert dispatched_steps(decision) == ["publish"]
    assert run.task("publish").input == {}  # the skipped draft has no output to read
    assert run.state.escalations[escalation.id].status is EscalationStatus.RESOLVED


def test_a_rejection_with_goto_runs_the_target_and_everything_after_it_again() -> None:
    run, escalation = rejecting_run("{goto: research}")
    run.advance(10)

    decision = decide(run, escalation, "reject", reason="research more")

    assert statuses(run) == {
        "research": TaskStatus.DISPATCHED,
        "side": TaskStatus.COMPLETED,  # not downstream of research: kept
        "draft": TaskStatus.PENDING,
        "publish": TaskStatus.PENDING,
    }
    research = run.task("research")
    assert (research.attempt, research.output, research.error) == (2, None, None)
    assert research.lease_expires_at == run.now + timedelta(seconds=60)
    draft = run.task("draft")
    assert (draft.output, draft.proposal, draft.confidence, draft.finished_at) == (
        None,
        None,
        None,
        None,
    )
    assert run.task("side").output == {"done": True}
    resolved = run.state.escalations[escalation.id]
    assert decision.commands == (
        RecordReviewEvent(resolved, "resolved", "ada", {"action": "reject"}),
        DispatchTask(research, research.lease_expires_at),
    )


def test_after_a_goto_the_steps_run_again_and_a_second_escalation_opens() -> None:
    run, first = rejecting_run("{goto: research}")
    decide(run, first, "reject", reason="research more")

    report(run, "research", {"notes": "better notes"})
    assert run.task("draft").status is TaskStatus.DISPATCHED
    assert (run.task("draft").attempt, run.task("draft").input) == (2, {"notes": "better notes"})
    report(run, "draft", {"text": "second draft"})

    second = open_escalation_of(run, "draft")
    assert second.id == escalation_id(run.task("draft").id, 2) != first.id
    assert (second.attempt, second.version) == (2, 1)
    assert second.content["output"] == {"text": "second draft"}
    decide(run, second, "approve")
    report(run, "publish", {"sent": True})
    assert run.state.status is WorkflowStatus.COMPLETED
    assert run.task("draft").output == {"text": "second draft"}


def test_a_goto_gives_the_target_a_fresh_retry_budget() -> None:
    run = Run(load_playbook(rejecting("{goto: research}")), {})
    run.start()
    run.fail("research")  # research (retries: 1) uses its whole budget: 2 attempts
    run.advance(60)
    run.apply(RetryDue(run.task("research").id))
    report(run, "research", {"notes": "n"})
    report(run, "side", {})
    report(run, "draft")
    assert (run.task("research").attempt, run.task("research").max_attempts) == (2, 2)

    decide(run, open_escalation_of(run, "draft"), "reject", reason="again")

    research = run.task("research")
    assert (research.attempt, research.max_attempts) == (3, 4)
    run.fail("research")  # without a fresh budget this would fail the workflow
    assert run.task("research").status is TaskStatus.RETRY_WAIT
    assert run.state.status is WorkflowStatus.RUNNING


def test_a_goto_to_the_rejected_step_itself_runs_it_again_with_the_same_input() -> None:
    run, escalation = rejecting_run("{goto: draft}")

    decision = decide(run, escalation, "reject", reason="try again")

    assert dispatched_steps(decision) == ["draft"]
    draft = run.task("draft")
    assert (draft.status, draft.attempt, draft.input) == (
        TaskStatus.DISPATCHED,
        2,
        {"notes": "first notes"},
    )
    assert draft.max_attempts == 1 + 3
    assert run.task("research").status is TaskStatus.COMPLETED
    assert run.task("research").attempt == 1


# --- retry ---------------------------------------------------------------------------------


def test_retry_dispatches_the_next_attempt_with_the_same_input() -> None:
    run, escalation = escalated_draft()
    run.advance(30)

    decision = decide(run, escalation, "retry")

    draft = run.task("draft")
    assert (draft.status, draft.attempt, draft.input, draft.proposal) == (
        TaskStatus.DISPATCHED,
        2,
        {"topic": "refunds"},
        None,
    )
    resolved = run.state.escalations[escalation.id]
    assert resolved.status is EscalationStatus.RESOLVED
    assert decision.commands == (
        RecordReviewEvent(resolved, "resolved", "ada", {"action": "retry"}),
        DispatchTask(draft, run.now + timedelta(seconds=30)),
    )
    assert run.task("publish").status is TaskStatus.PENDING


def test_the_retried_attempts_result_is_reviewed_again() -> None:
    run, first = escalated_draft()
    decide(run, first, "retry")

    report(run, "draft", {"text": "better"}, confidence=0.6)

    second = open_escalation_of(run, "draft")
    assert second.id == escalation_id(run.task("draft").id, 2)
    assert second.attempt == 2
    assert second.digest != first.digest


def test_after_a_retry_a_redelivered_result_of_the_reviewed_attempt_is_not_applied() -> None:
    run, escalation = escalated_draft()
    decide(run, escalation, "retry")

    # Kafka delivers at least once: attempt 1's result, the one the reviewer sent back,
    # arrives again while attempt 2 runs.
    again = report(run, "draft", {"text": "Refunds take 5 days."}, confidence=0.5, attempt=1)

    assert not again.applied
    assert run.task("draft").status is TaskStatus.DISPATCHED
    assert [e.id for e in run.state.escalations.values()] == [escalation.id]


def test_a_retry_of_the_steps_last_attempt_is_not_applied() -> None:
    run, first = escalated_draft()  # the draft has 2 attempts
    decide(run, first, "retry")
    report(run, "draft", {"text": "second try"}, confidence=0.6)
    last = open_escalation_of(run, "draft")
    waiting = run.state

    decision = decide(run, last, "retry", decision_id="d-third")

    assert not decision.applied
    assert decision.note == (
        "decision d-third: step 'draft' has used all 2 of its attempts, so it cannot be "
        "retried; approve, edit or reject the result"
    )
    assert run.state is waiting
    assert (run.task("draft").attempt, run.task("draft").max_attempts) == (2, 2)


# --- decisions that cannot be applied ------------------------------------------------------


def test_a_decision_on_an_older_version_is_not_applied() -> None:
    run, escalation = escalated_draft()
    waiting = run.state

    decision = decide(run, escalation, "approve", version=2, decision_id="d-old")

    assert not decision.applied
    assert decision.note == (
        "decision d-old: the escalation changed since you saw it (you saw version 2, it is at "
        "version 1); reload it and look again"
    )
    assert run.state is waiting


def test_a_decision_on_other_content_than_the_escalation_shows_is_not_applied() -> None:
    run, escalation = escalated_draft()

    decision = decide(run, escalation, "approve", digest=canonical_digest({"other": 1}))

    assert not decision.applied
    assert decision.note is not None
    assert "digest" in decision.note
    assert run.task("draft").status is TaskStatus.AWAITING_REVIEW


def _accepted(run: Run, escalation: EscalationState, action: str, **fields: Any) -> ReviewDecision:
    """Record a decision as the review API does: decided, version + 1."""
    decision = ReviewDecision("d-accepted", action, "ada", run.now, **fields)
    decided = escalation.evolve(
        status=EscalationStatus.DECIDED, version=escalation.version + 1, decision=decision
    )
    run.state = run.state.with_escalation(decided)
    return decision


def test_a_decided_escalation_applies_its_recorded_decision() -> None:
    run, escalation = escalated_draft()
    accepted = _accepted(run, escalation, "edit", output={"text": "Edited."})

    # The event carries the version the reviewer saw; the escalation is one further.
    applied = run.apply(DecisionMade(escalation.id, accepted, 1, escalation.digest))

    assert applied.applied
    assert run.task("draft").output == {"text": "Edited."}
    assert run.state.escalations[escalation.id].status is EscalationStatus.RESOLVED


def test_a_decided_escalation_applies_no_other_decision() -> None:
    run, escalation = escalated_draft()
    _accepted(run, escalation, "approve")
    decided = run.state

    other = decide(run, escalation, "reject", reason="me too", decision_id="d-other")

    assert not other.applied
    assert other.note == (
        "decision d-other: already decided: approve by ada at 2024-03-01T12:00:02+00:00"
    )
    assert run.state is decided


def test_a_duplicate_decision_on_a_resolved_escalation_is_not_applied() -> None:
    run, escalation = escalated_draft()
    decide(run, escalation, "approve", decision_id="d-1")
    resolved = run.state
    accepted = resolved.escalations[escalation.id].decision
    assert accepted is not None

    again = run.apply(DecisionMade(escalation.id, accepted, 1, escalation.digest))

    assert not again.applied
    assert again.note == "decision d-1: the escalation is already resolved"
    assert run.state is resolved
    assert run.task("publish").attempt == 1  # dispatched once


def test_a_decision_on_an_unknown_escalation_is_not_applied() -> None:
    run, _ = escalated_draft()
    decision = ReviewDecision("d", "approve", "ada", run.now)

    found = run.apply(DecisionMade("no-such-escalation", decision, 1, "0" * 64))

    assert not found.applied
    assert found.note == "no escalation no-such-escalation"
