"""Four eyes in the pure core: an escalation that needs two different reviewers stays
pending after the first approval, refuses the same reviewer's second, completes with a
different reviewer's, treats an edit as its author's approval of the edited output, and
is rejected by anyone at once; the orchestrator applies only a complete decision; a
policy's four eyes and risk level reach a policy-approval escalation. No fixtures: the
store's part of a decision (ask the rules, accept, save) is done here as
``orchestrator/review.py`` does it."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import count
from typing import Any

import pytest

from orchestrator.errors import PlaybookError
from orchestrator.workflow.approvals import granted
from orchestrator.workflow.four_eyes import accept, awaiting_output, incomplete, progress
from orchestrator.workflow.messages import ActionApproval, DecisionMade, TaskAttemptFailed
from orchestrator.workflow.review import (
    DecisionRequest,
    Refusal,
    Reviewer,
    refuse_decision,
)
from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    ReviewDecision,
    TaskError,
    TaskStatus,
    WorkflowStatus,
)
from tests.orchestrator.workflow.harness import Run, dispatched_steps, load_playbook
from tests.orchestrator.workflow.test_review import open_escalation_of, report

FOUR_EYES = """\
type: four.eyes
steps:
  - name: draft
    capability: writer
    requires_approval: true
    review: {group: editors, approvals: 2}
    output_schema:
      type: object
      required: [text]
      properties: {text: {type: string, minLength: 1}}
  - name: publish
    capability: publisher
    depends_on: [draft]
    input: {text: $steps.draft.output.text}
"""
PROPOSED = {"text": "Refunds take 5 days."}
_IDS = count(1)


def four_eyes_run(playbook: str = FOUR_EYES) -> tuple[Run, EscalationState]:
    """A run whose draft waits for two reviewers' approval."""
    run = Run(load_playbook(playbook), {})
    run.start()
    run.advance(2)
    report(run, "draft", PROPOSED)
    return run, open_escalation_of(run, "draft")


def review(
    run: Run,
    escalation_id: str,
    action: str,
    reviewer: str,
    *,
    output: Mapping[str, Any] | None = None,
    reason: str | None = None,
    version: int | None = None,
    admin: bool = False,
) -> EscalationState | Refusal:
    """What ``Reviews.decide`` does with a reviewer's request on the page they saw: ask
    the rules, accept, save; a complete decision then reaches the orchestrator."""
    escalation = run.state.escalations[escalation_id]
    seen = escalation.version if version is None else version
    request = DecisionRequest(
        escalation_id,
        action,  # type: ignore[arg-type]
        seen,
        escalation.digest,
        output,
        reason,
    )
    step = run.playbook.step(escalation.step) if run.playbook else None
    task = run.task(escalation.step)
    refusal = refuse_decision(escalation, task, step, request, Reviewer(reviewer, admin))
    if refusal is not None:
        return refusal
    decision = ReviewDecision(f"d-{next(_IDS)}", action, reviewer, run.now, output, reason)
    accepted = accept(escalation, decision)
    run.state = run.state.with_escalation(accepted)
    if accepted.status is EscalationStatus.DECIDED:
        assert accepted.decision is not None
        run.apply(DecisionMade(escalation_id, accepted.decision, seen, escalation.digest))
    return accepted


def pending(value: EscalationState | Refusal) -> EscalationState:
    assert isinstance(value, EscalationState), value
    assert value.status is EscalationStatus.PENDING
    return value


def refused(value: EscalationState | Refusal) -> Refusal:
    assert isinstance(value, Refusal), value
    return value


# --- opening ---------------------------------------------------------------------------------


def test_a_step_asking_for_two_approvals_opens_an_escalation_needing_two() -> None:
    _, escalation = four_eyes_run()

    assert escalation.required_approvals == 2
    assert escalation.approvals == ()
    assert progress(escalation) == {"approvals": 0, "required_approvals": 2}


def test_one_approval_is_enough_by_default() -> None:
    run, escalation = four_eyes_run(FOUR_EYES.replace(", approvals: 2", ""))
    assert escalation.required_approvals == 1

    decided = review(run, escalation.id, "approve", "ann")

    assert isinstance(decided, EscalationState)
    assert decided.status is EscalationStatus.DECIDED
    assert run.task("draft").status is TaskStatus.COMPLETED


@pytest.mark.parametrize("approvals", [0, 6, "two"])
def test_a_playbook_asking_for_an_impossible_number_of_approvals_is_refused(
    approvals: object,
) -> None:
    with pytest.raises(PlaybookError, match="approvals"):
        load_playbook(FOUR_EYES.replace("approvals: 2", f"approvals: {approvals}"))


# --- the first approval ------------------------------------------------------------------


def test_the_first_approval_leaves_it_pending_one_version_on_and_free_for_another() -> None:
    run, escalation = four_eyes_run()
    run.state = run.state.with_escalation(escalation.evolve(assignee="ann", claimed_at=run.now))

    first = pending(review(run, escalation.id, "approve", "ann"))

    assert first.version == escalation.version + 1
    assert [(a.action, a.reviewer) for a in first.approvals] == [("approve", "ann")]
    assert first.decision is None
    assert (first.assignee, first.claimed_at) == (None, None)  # a second reviewer may take it
    assert run.task("draft").status is TaskStatus.AWAITING_REVIEW
    assert run.task("publish").status is TaskStatus.PENDING
    assert progress(first) == {"approvals": 1, "required_approvals": 2}


def test_the_same_reviewer_cannot_give_the_second_approval_even_as_admin() -> None:
    run, escalation = four_eyes_run()
    first = pending(review(run, escalation.id, "approve", "ann"))

    for admin in (False, True):
        refusal = refused(review(run, escalation.id, "approve", "ann", admin=admin))
        assert refusal.message == (
            "you approved it already; a second reviewer must approve it (1 of 2 approvals given)"
        )
        assert refusal.conflict
        assert refusal.detail == {"approvals": 1, "required_approvals": 2}
    assert run.state.escalations[escalation.id] == first


def test_a_page_from_before_the_first_approval_is_stale() -> None:
    run, escalation = four_eyes_run()
    pending(review(run, escalation.id, "approve", "ann"))

    refusal = refused(review(run, escalation.id, "approve", "bob", version=escalation.version))

    assert refusal.conflict
    assert "changed since you saw it" in refusal.message


# --- completing it -----------------------------------------------------------------------


def test_a_second_reviewer_completes_it_and_the_workflow_resumes_with_the_output() -> None:
    run, escalation = four_eyes_run()
    pending(review(run, escalation.id, "approve", "ann"))

    second = review(run, escalation.id, "approve", "bob")

    assert isinstance(second, EscalationState)
    assert second.status is EscalationStatus.DECIDED
    assert second.decision is not None
    assert (second.decision.action, second.decision.reviewer) == ("approve", "bob")
    assert [a.reviewer for a in second.approvals] == ["ann", "bob"]
    resolved = run.state.escalations[escalation.id]
    assert resolved.status is EscalationStatus.RESOLVED
    assert run.task("draft").status is TaskStatus.COMPLETED
    assert run.task("draft").output == PROPOSED
    assert run.task("publish").status is TaskStatus.DISPATCHED


def test_an_edit_is_its_authors_approval_and_the_second_approves_the_edited_output() -> None:
    run, escalation = four_eyes_run()
    edited = {"text": "Refunds take 3 days."}

    first = pending(review(run, escalation.id, "edit", "ann", output=edited, reason="faster"))

    assert awaiting_output(first) == edited
    refusal = refused(review(run, escalation.id, "approve", "ann"))
    assert refusal.message.startswith("your edit counts as your approval; a second reviewer")
    second = review(run, escalation.id, "approve", "bob")
    assert isinstance(second, EscalationState)
    assert second.decision is not None
    # Approving an edit decides the edit: the workflow goes on with the edited output.
    assert (second.decision.action, second.decision.output) == ("edit", edited)
    assert (second.decision.reviewer, second.decision.reason) == ("bob", "faster")
    assert run.task("draft").output == edited
    assert run.task("publish").input == edited


def test_an_edit_after_an_approval_starts_over_with_the_new_output() -> None:
    run, escalation = four_eyes_run()
    pending(review(run, escalation.id, "approve", "ann"))
    edited = {"text": "Refunds take 4 days."}

    bobs = pending(review(run, escalation.id, "edit", "bob", output=edited))

    # Ann approved another output: her approval no longer counts, so she may approve Bob's.
    assert [(a.action, a.reviewer) for a in bobs.approvals] == [("edit", "bob")]
    assert awaiting_output(bobs) == edited
    refused(review(run, escalation.id, "approve", "bob"))
    done = review(run, escalation.id, "approve", "ann")
    assert isinstance(done, EscalationState)
    assert done.status is EscalationStatus.DECIDED
    assert run.task("draft").output == edited


def test_an_edit_breaking_the_output_schema_is_no_approval() -> None:
    run, escalation = four_eyes_run()

    refusal = refused(review(run, escalation.id, "edit", "ann", output={"text": ""}))

    assert "output schema" in refusal.message
    assert run.state.escalations[escalation.id] == escalation


def test_a_rejection_by_anyone_rejects_at_once() -> None:
    run, escalation = four_eyes_run()
    pending(review(run, escalation.id, "approve", "ann"))

    rejected = review(run, escalation.id, "reject", "ann", reason="wrong tone")

    assert isinstance(rejected, EscalationState)
    assert rejected.status is EscalationStatus.DECIDED
    assert run.state.status is WorkflowStatus.FAILED
    assert "rejected step 'draft': wrong tone" in (run.state.reason or "")


# --- what the orchestrator applies -------------------------------------------------------


def test_the_orchestrator_applies_no_approval_the_review_operations_did_not_complete() -> None:
    run, escalation = four_eyes_run()
    waiting = run.state
    forged = ReviewDecision("d-direct", "approve", "eve", run.now)

    decision = run.apply(DecisionMade(escalation.id, forged, escalation.version, escalation.digest))

    assert not decision.applied
    assert decision.note == (
        "decision d-direct: it needs the approval of 2 different reviewers, which only the "
        "review console and API record"
    )
    assert run.state == waiting
    assert incomplete(escalation, ReviewDecision("d", "reject", "eve", run.now)) is None


def test_a_rejection_reaches_the_orchestrator_without_a_second_reviewer() -> None:
    run, escalation = four_eyes_run()
    rejection = ReviewDecision("d-reject", "reject", "eve", run.now, reason="no")

    decision = run.apply(
        DecisionMade(escalation.id, rejection, escalation.version, escalation.digest)
    )

    assert decision.applied
    assert run.state.status is WorkflowStatus.FAILED


# --- a policy's four eyes and risk level -------------------------------------------------

GOVERNED = """\
type: governed
steps:
  - name: refund
    capability: billing
    retries: 0
    input: {amount: $goal.amount}
"""
RULE = {
    "policy": "billing",
    "file": "policies/billing.yaml",
    "version": 3,
    "digest": "e" * 64,
    "path": "require_approval[0]",
    "line": 9,
}


def asking_for_approval(
    playbook: str = GOVERNED, *, risk: str = "high", approvals: int = 2
) -> tuple[Run, EscalationState]:
    """The refund attempt stops at an action the policy holds for two reviewers."""
    run = Run(load_playbook(playbook), {"amount": 120})
    run.start()
    task = run.task("refund")
    approval = ActionApproval(
        "refund",
        "d" * 64,
        27,
        "'refund' needs a human's approval",
        scopes=("billing.invoices",),
        rule=RULE,
        risk=risk,
        approvals=approvals,
    )
    error = TaskError("ApprovalRequired", "needs approval", retryable=False)
    run.apply(TaskAttemptFailed(task.id, task.attempt, error, approval))
    return run, open_escalation_of(run, "refund")


def test_a_policys_four_eyes_and_risk_reach_the_policy_approval() -> None:
    run, escalation = asking_for_approval()

    assert escalation.required_approvals == 2
    proposed = escalation.content["proposed_action"]
    assert proposed["risk"] == "high"
    assert proposed["rule"] == RULE  # the rule as the policy names it, nothing more

    pending(review(run, escalation.id, "approve", "ann"))
    refused(review(run, escalation.id, "approve", "ann"))
    done = review(run, escalation.id, "approve", "bob")

    assert isinstance(done, EscalationState)
    (grant,) = granted(run.state, run.task("refund").id)
    assert grant.approved_by == "ann, bob"
    assert run.task("refund").status is TaskStatus.DISPATCHED  # runs again, approved


def test_the_step_or_the_policy_whichever_asks_more_decides_how_many_approve() -> None:
    _, by_policy = asking_for_approval(approvals=2)
    stricter_step = GOVERNED.replace("retries: 0", "retries: 0\n    review: {approvals: 3}")
    _, by_step = asking_for_approval(stricter_step, approvals=2)
    _, single = asking_for_approval(risk="low", approvals=1)

    assert (by_policy.required_approvals, by_step.required_approvals) == (2, 3)
    assert single.required_approvals == 1
    assert single.content["proposed_action"]["risk"] == "low"


def test_an_approval_from_an_older_agent_is_low_risk_with_one_reviewer() -> None:
    run = Run(load_playbook(GOVERNED), {"amount": 120})
    run.start()
    task = run.task("refund")
    approval = ActionApproval("refund", "d" * 64, 27, "needs approval")
    error = TaskError("ApprovalRequired", "needs approval", retryable=False)

    decision = run.apply(TaskAttemptFailed(task.id, task.attempt, error, approval))

    escalation = open_escalation_of(run, "refund")
    assert escalation.required_approvals == 1
    assert escalation.content["proposed_action"]["risk"] == "low"
    assert escalation.content["proposed_action"]["rule"] is None
    assert dispatched_steps(decision) == []
