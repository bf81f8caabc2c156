"""The reviewer rules on their own: what a reviewer may decide, comment on, claim or give
back, and the one message each refusal has. Pure: no fixtures; the same rules refuse a
request over HTTP (tests/orchestrator/test_reviews.py) and a decision the orchestrator is
asked to apply (test_review_decisions.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from orchestrator.playbooks.model import Step
from orchestrator.workflow.escalation import escalate
from orchestrator.workflow.review import (
    DecisionRequest,
    Refusal,
    Reviewer,
    refuse_claim,
    refuse_comment,
    refuse_decision,
)
from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    ReviewDecision,
    TaskState,
    TaskStatus,
    WorkflowState,
    WorkflowStatus,
)
from tests.orchestrator.workflow.harness import T0

STEP = Step(
    "draft",
    "writer",
    requires_approval=True,
    retries=2,
    output_schema={"type": "object", "required": ["text"]},
    output_checker=lambda output: [] if "text" in output else [("text", "is required")],
)
ADA, BOB, ROOT = Reviewer("ada"), Reviewer("bob"), Reviewer("root", may_override=True)


def pending(
    kind: str = "approval", *, attempt: int = 1, **changes: Any
) -> tuple[EscalationState, TaskState]:
    """An escalation of ``kind`` opened on ``attempt`` of the draft's 3, and its task."""
    state = WorkflowState("wf", "t", WorkflowStatus.RUNNING, {}, T0)
    task = TaskState("task", "draft", "writer", TaskStatus.DISPATCHED, 3, attempt, input={})
    shown = {"output": None if kind in ("fallback", "policy_approval") else {"text": "hi"}}
    decision = escalate(
        state, task, STEP, attempt=attempt, kind=kind, reason="why", shown=shown, now=T0
    )
    (escalation,) = decision.state.escalations.values()
    return escalation.evolve(**changes), decision.state.tasks["draft"]


def request(escalation: EscalationState, action: str, **fields: Any) -> DecisionRequest:
    """A decision on what the reviewer saw."""
    values: dict[str, Any] = {"version": escalation.version, "digest": escalation.digest}
    values.update(fields)
    return DecisionRequest(escalation.id, action, **values)  # type: ignore[arg-type]


def test_a_complete_decision_on_what_the_reviewer_saw_is_allowed() -> None:
    escalation, task = pending()

    for action, fields in (
        ("approve", {}),
        ("edit", {"output": {"text": "better"}}),
        ("reject", {"reason": "no"}),
        ("retry", {}),
    ):
        assert (
            refuse_decision(escalation, task, STEP, request(escalation, action, **fields), ADA)
            is None
        )


def test_a_decision_on_another_version_or_digest_is_a_conflict_naming_the_current_version() -> None:
    escalation, task = pending(version=2)

    older = refuse_decision(escalation, task, STEP, request(escalation, "approve", version=1), ADA)
    other = refuse_decision(
        escalation, task, STEP, request(escalation, "approve", digest="f" * 64), ADA
    )

    assert older == Refusal(
        "the escalation changed since you saw it (you saw version 1, it is at version 2); "
        "reload it and look again",
        conflict=True,
        detail={"version": 2},
    )
    assert other is not None
    assert other.conflict
    assert other.message == (
        f"the escalation shows other content than you saw (you saw digest {'f' * 12}, it "
        f"shows {escalation.digest[:12]}); reload it and look again"
    )


def test_a_decided_escalation_names_the_decision_that_won() -> None:
    won = ReviewDecision("d1", "approve", "bob", T0 + timedelta(minutes=5))
    escalation, task = pending(status=EscalationStatus.DECIDED, decision=won)

    refused = refuse_decision(
        escalation, task, STEP, request(escalation, "reject", reason="x"), ADA
    )

    assert refused == Refusal(
        "already decided: approve by bob at 2024-03-01T12:05:00+00:00",
        conflict=True,
        detail={"escalation_status": "decided"},
    )


def test_someone_elses_claim_refuses_everyone_but_them_and_admins() -> None:
    escalation, task = pending(assignee="bob")

    refused = refuse_decision(escalation, task, STEP, request(escalation, "approve"), ADA)

    assert refused == Refusal(
        "claimed by bob; ask them or an admin to reassign it",
        conflict=True,
        detail={"assignee": "bob"},
    )
    for allowed in (BOB, ROOT):
        assert (
            refuse_decision(escalation, task, STEP, request(escalation, "approve"), allowed) is None
        )


@pytest.mark.parametrize(
    ("kind", "action", "fields", "message"),
    [
        (
            "approval",
            "promote",
            {},
            "unknown action 'promote'; use one of approve, edit, reject, retry",
        ),
        ("approval", "reject", {"reason": "  "}, "a rejection needs a reason"),
        ("approval", "edit", {}, "an edit needs the edited output"),
        (
            "approval",
            "edit",
            {"output": {"body": "x"}},
            "the edited output breaks the step's output schema: text: is required",
        ),
        (
            "fallback",
            "approve",
            {},
            "every attempt of step 'draft' failed, so there is no output to approve; edit "
            "(supply the output), retry or reject",
        ),
        (
            "policy_approval",
            "edit",
            {"output": {"text": "x"}},
            "step 'draft' waits for the approval of an action, so there is no output to edit; "
            "approve the action, retry the step or reject it",
        ),
    ],
)
def test_an_incomplete_or_disallowed_decision_is_invalid(
    kind: str, action: str, fields: dict[str, Any], message: str
) -> None:
    escalation, task = pending(kind)

    refused = refuse_decision(escalation, task, STEP, request(escalation, action, **fields), ADA)

    assert refused is not None
    assert (refused.message, refused.conflict) == (message, False)


def test_edit_errors_list_each_field() -> None:
    escalation, task = pending()

    refused = refuse_decision(escalation, task, STEP, request(escalation, "edit", output={}), ADA)

    assert refused is not None
    assert refused.detail == {"errors": [{"field": "text", "message": "is required"}]}


def test_without_the_playbook_version_an_edit_cannot_be_checked() -> None:
    escalation, task = pending()

    refused = refuse_decision(
        escalation, task, None, request(escalation, "edit", output={"text": "x"}), ADA
    )

    assert refused is not None
    assert "cannot be checked against the step's output schema" in refused.message


def test_a_retry_spends_one_of_the_steps_attempts_and_needs_one_left() -> None:
    second, task_at_2 = pending(attempt=2)
    last, task_at_3 = pending(attempt=3)

    assert refuse_decision(second, task_at_2, STEP, request(second, "retry"), ADA) is None
    refused = refuse_decision(last, task_at_3, STEP, request(last, "retry"), ADA)

    assert refused == Refusal(
        "step 'draft' has used all 3 of its attempts, so it cannot be retried; approve, edit "
        "or reject the result",
        detail={"attempt": 3, "max_attempts": 3},
    )
    single = task_at_3.evolve(attempt=1, max_attempts=1)
    only = refuse_decision(last, single, STEP, request(last, "retry"), ADA)
    assert only is not None
    assert only.message.startswith("step 'draft' has used its only attempt, so")


@pytest.mark.parametrize("kind", ["fallback", "policy_approval"])
def test_a_retry_after_every_attempt_failed_or_for_an_approved_action_brings_its_own(
    kind: str,
) -> None:
    escalation, task = pending(kind, attempt=3)

    assert refuse_decision(escalation, task, STEP, request(escalation, "retry"), ADA) is None


def test_a_comment_needs_text_and_the_version_the_commenter_saw_whatever_the_status() -> None:
    decided = ReviewDecision("d1", "approve", "bob", T0)
    escalation, _ = pending(status=EscalationStatus.DECIDED, decision=decided, version=2)

    assert refuse_comment(escalation, text="called the customer", version=2) is None
    assert refuse_comment(escalation, text="  ", version=2) == Refusal("a comment needs some text")
    stale = refuse_comment(escalation, text="approve it", version=1)
    assert stale is not None
    assert (stale.conflict, stale.detail) == (True, {"version": 2})
    assert stale.message.startswith("the escalation changed since you saw it (you saw version 1")


def test_claims_need_a_pending_escalation_nobody_else_holds() -> None:
    free, _ = pending()
    held, _ = pending(assignee="bob")
    resolved, _ = pending(status=EscalationStatus.RESOLVED)

    assert refuse_claim(free, ADA) is None
    assert refuse_claim(held, BOB) is None
    assert refuse_claim(held, ROOT) is None
    refused = refuse_claim(held, ADA)
    assert refused is not None
    assert refused.message == "claimed by bob; ask them or an admin to reassign it"
    closed = refuse_claim(resolved, ADA)
    assert closed == Refusal(
        "the escalation is resolved; nothing is waiting for a decision",
        conflict=True,
        detail={"escalation_status": "resolved"},
    )
