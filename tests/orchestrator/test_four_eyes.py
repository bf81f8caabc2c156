"""Four eyes on the real PostgreSQL, through the review operations and the intake: the
first approval is stored and audited but publishes nothing and resumes nothing, the same
reviewer's second approval is a conflict, a different reviewer's completes it and the
workflow goes on with the approved (or edited) output; the approvals survive the row
round trip and show in the inbox."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from orchestrator.review import ReviewConflict, Reviewer
from orchestrator.store import escalations as escalation_rows
from orchestrator.store.escalations import InboxFilter
from orchestrator.workflow.machine import task_id
from orchestrator.workflow.state import EscalationStatus, TaskStatus, WorkflowStatus
from tests.orchestrator.test_reviews import ReviewHarness, write_playbooks
from waypost.events import (
    AgentInfo,
    ApprovalGrant,
    ApprovalRequest,
    DecisionRecorded,
    ErrorInfo,
    Event,
    GoalSubmitted,
    RuleInfo,
    TaskDispatched,
    TaskFailed,
)

pytestmark = pytest.mark.integration

GOAL_TYPE = "test.four_eyes"
FOUR_EYES = f"""\
type: {GOAL_TYPE}
steps:
  - name: draft
    capability: echo
    requires_approval: true
    input: {{text: $goal.text}}
    review: {{group: editors, approvals: 2}}
    output_schema:
      type: object
      required: [text]
      properties: {{text: {{type: string, minLength: 1}}}}
output:
  text: $steps.draft.output.text
"""


def write_four_eyes_playbooks(directory: Path) -> Path:
    """The reviewed playbook and one whose draft needs two reviewers."""
    write_playbooks(directory)
    (directory / "four_eyes.yaml").write_text(FOUR_EYES)
    return directory


@pytest.fixture
def harness(engine: Engine, namespace: str, tmp_path: Path) -> ReviewHarness:
    return ReviewHarness(engine, namespace, write_four_eyes_playbooks(tmp_path / "playbooks"))


def test_one_approval_is_not_enough_and_the_same_reviewer_cannot_give_the_second(
    harness: ReviewHarness,
) -> None:
    escalation = harness.escalate("g-4e", goal_type=GOAL_TYPE, output={"text": "proposal"})
    assert escalation.required_approvals == 2
    harness.now += timedelta(seconds=5)

    first = harness.decide(harness.request(escalation, "approve"), "ann")

    assert not first.complete
    stored = harness.escalation(escalation.id)
    assert stored == first.escalation
    assert (stored.status, stored.version, stored.decision) == (EscalationStatus.PENDING, 2, None)
    assert [(a.reviewer, a.action, a.id) for a in stored.approvals] == [
        ("ann", "approve", first.decision_id)
    ]
    assert harness.queued_decisions() == []  # nothing for the workflow yet
    assert harness.decided == []  # and no decision time counted
    (_opened, approved) = harness.audit(escalation.id)
    assert (approved.actor, approved.action, approved.version) == ("ann", "decide", 1)
    assert approved.detail == {
        "decision": "approve",
        "decision_id": first.decision_id,
        "approvals": 1,
        "required_approvals": 2,
    }
    assert harness.state("g-4e").tasks["draft"].status is TaskStatus.AWAITING_REVIEW

    with pytest.raises(ReviewConflict) as again:
        harness.decide(harness.request(stored, "approve"), "ann")
    assert str(again.value) == (
        "you approved it already; a second reviewer must approve it (1 of 2 approvals given)"
    )
    with pytest.raises(ReviewConflict, match="changed since you saw it"):
        harness.decide(harness.request(escalation, "approve"), "bob")  # the page of version 1
    assert harness.escalation(escalation.id) == stored

    second = harness.decide(harness.request(stored, "approve"), "bob")

    assert second.complete
    decided = harness.escalation(escalation.id)
    assert decided.status is EscalationStatus.DECIDED
    assert [a.reviewer for a in decided.approvals] == ["ann", "bob"]
    ((_, event),) = harness.queued_decisions()
    payload = event.payload
    assert isinstance(payload, DecisionRecorded)
    assert (payload.action, payload.reviewer, payload.version) == ("approve", "bob", 2)
    assert harness.deliver_decisions() == 1
    state = harness.state("g-4e")
    assert state.status is WorkflowStatus.COMPLETED
    assert state.output == {"text": "proposal"}


def test_a_second_reviewer_approves_the_first_ones_edit(harness: ReviewHarness) -> None:
    escalation = harness.escalate("g-4e-edit", goal_type=GOAL_TYPE, output={"text": "draft"})
    edited = {"text": "edited by ann"}

    first = harness.decide(harness.request(escalation, "edit", output=edited), "ann")

    assert not first.complete
    with pytest.raises(ReviewConflict, match="your edit counts as your approval"):
        harness.decide(harness.request(first.escalation, "approve"), "ann")
    second = harness.decide(harness.request(first.escalation, "approve"), "bob")
    assert second.escalation.decision is not None
    assert (second.escalation.decision.action, second.escalation.decision.output) == (
        "edit",
        edited,
    )
    harness.deliver_decisions()
    assert harness.state("g-4e-edit").output == edited


def test_the_first_approval_releases_the_claim_for_a_second_reviewer(
    harness: ReviewHarness,
) -> None:
    escalation = harness.escalate("g-4e-claim", goal_type=GOAL_TYPE)
    with harness.engine.begin() as conn:
        harness.reviews.claim(
            conn, escalation_id=escalation.id, reviewer=Reviewer("ann"), now=harness.now
        )

    first = harness.decide(harness.request(harness.escalation(escalation.id), "approve"), "ann")

    assert first.escalation.assignee is None
    second = harness.decide(harness.request(first.escalation, "approve"), "bob")  # no override
    assert second.complete


def test_a_pending_first_approval_is_nothing_for_the_reconciler_to_apply(
    harness: ReviewHarness,
) -> None:
    escalation = harness.escalate("g-4e-timer", goal_type=GOAL_TYPE)
    harness.decide(harness.request(escalation, "approve"), "ann")

    harness.now += timedelta(minutes=5)

    assert harness.reconciler.tick().applied == 0
    assert harness.state("g-4e-timer").tasks["draft"].status is TaskStatus.AWAITING_REVIEW


def test_a_rejection_after_the_first_approval_rejects(harness: ReviewHarness) -> None:
    escalation = harness.escalate("g-4e-reject", goal_type=GOAL_TYPE)
    first = harness.decide(harness.request(escalation, "approve"), "ann")

    harness.decide(harness.request(first.escalation, "reject", reason="not yet"), "ann")

    harness.deliver_decisions()
    state = harness.state("g-4e-reject")
    assert state.status is WorkflowStatus.FAILED
    assert "reviewer ann rejected step 'draft': not yet" in (state.reason or "")


def test_the_inbox_shows_how_many_approvals_an_escalation_has_and_needs(
    harness: ReviewHarness,
) -> None:
    four_eyes = harness.escalate("g-4e-inbox", goal_type=GOAL_TYPE)
    single = harness.escalate("g-1e-inbox")
    harness.decide(harness.request(four_eyes, "approve"), "ann")

    with harness.engine.connect() as conn:
        page = escalation_rows.inbox(conn, filters=InboxFilter(), now=harness.now)
    counts = {row.id: (row.approvals, row.required_approvals) for row in page.rows}
    assert counts == {four_eyes.id: (1, 2), single.id: (0, 1)}


def test_a_policys_four_eyes_travel_from_the_agent_to_the_next_dispatch(
    harness: ReviewHarness,
) -> None:
    goal = GoalSubmitted(type="test.reviewed", input={"text": "refund"})
    harness.deliver(Event(goal, source="tests", id="g-4e-policy"), harness.topics.goals)
    reason = "'refund' is critical under policy 'billing' v1 risk.refund: a person must approve it"
    asked = TaskFailed(
        workflow_id="g-4e-policy",
        task_id=task_id("g-4e-policy", "draft"),
        step="draft",
        capability="echo",
        attempt=1,
        error=ErrorInfo(type="ApprovalRequired", message=reason, retryable=False),
        agent=AgentInfo(capability="echo", version="1", instance="test:1"),
        approval=ApprovalRequest(
            action="refund",
            params_digest="a" * 64,
            params_size=31,
            reason=reason,
            rule=RuleInfo(
                policy="billing",
                file="billing.yaml",
                version=1,
                digest="b" * 64,
                path="risk.refund",
            ),
            risk="critical",
            approvals=2,
        ),
    )
    harness.deliver(Event(asked, source="tests/agent"), harness.topics.results)
    (escalation,) = harness.state("g-4e-policy").escalations.values()
    assert escalation.required_approvals == 2
    assert escalation.content["proposed_action"]["risk"] == "critical"
    assert "risk" not in escalation.content["proposed_action"]["rule"]

    first = harness.decide(harness.request(escalation, "approve"), "ann")
    harness.decide(harness.request(first.escalation, "approve"), "bob")
    harness.deliver_decisions()

    *_, dispatch = harness.published(harness.topics.tasks("echo"))
    assert isinstance(dispatch, TaskDispatched)
    assert dispatch.approvals == [
        ApprovalGrant(
            action="refund",
            params_digest="a" * 64,
            approved_by="ann, bob",
            escalation_id=escalation.id,
        )
    ]
