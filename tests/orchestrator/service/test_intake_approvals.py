"""Actions held for approval through the intake, on the real PostgreSQL: the agent's
task.failed naming the action becomes an escalation, and the approval the reviewer gives
travels with the step's next dispatch (read back from the stored escalation)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from orchestrator.workflow.machine import task_id
from orchestrator.workflow.review import POLICY_APPROVAL
from orchestrator.workflow.state import EscalationStatus, TaskStatus
from tests.orchestrator.service.test_intake import AGENT, Harness
from waypost.events import (
    ApprovalGrant,
    ApprovalRequest,
    DecisionRecorded,
    ErrorInfo,
    Event,
    RuleInfo,
    TaskDispatched,
    TaskEscalated,
    TaskFailed,
)

pytestmark = pytest.mark.integration

DIGEST = "a" * 64
REASON = "'refund' needs a human's approval under policy 'billing' v1 require_approval[0]"


@pytest.fixture
def harness(engine: Engine, namespace: str) -> Harness:
    return Harness(engine, namespace)


def _asks_for_approval(harness: Harness, workflow_id: str) -> Event:
    payload = TaskFailed(
        workflow_id=workflow_id,
        task_id=task_id(workflow_id, "echo"),
        step="echo",
        capability="echo",
        attempt=1,
        error=ErrorInfo(type="ApprovalRequired", message=REASON, retryable=False),
        reasoning=["refund 120 to customer 42"],
        agent=AGENT,
        approval=ApprovalRequest(
            action="refund",
            params_digest=DIGEST,
            params_size=31,
            scopes=["billing.invoices"],
            reason=REASON,
            rule=RuleInfo(
                policy="billing",
                file="policies/billing.yaml",
                version=1,
                digest="b" * 64,
                path="require_approval[0]",
                line=7,
            ),
        ),
    )
    return Event(payload, source="tests/agent")


def test_an_approval_becomes_an_escalation_and_then_part_of_the_next_dispatch(
    harness: Harness,
) -> None:
    harness.intake.handle([harness.goal("goal-1", text="refund please")])

    harness.intake.handle([harness.delivery(_asks_for_approval(harness, "goal-1"), "results")])

    state = harness.state("goal-1")
    assert state is not None
    (escalation,) = state.escalations.values()
    assert (escalation.kind, escalation.reason) == (POLICY_APPROVAL, REASON)
    assert escalation.content["proposed_action"] == {
        "name": "refund",
        "params_digest": DIGEST,
        "params_size": 31,
        "scopes": ["billing.invoices"],
        "risk": "low",
        "rule": {
            "policy": "billing",
            "file": "policies/billing.yaml",
            "version": 1,
            "digest": "b" * 64,
            "path": "require_approval[0]",
            "line": 7,
        },
    }
    assert escalation.content["reasoning"] == ["refund 120 to customer 42"]
    assert state.tasks["echo"].status is TaskStatus.AWAITING_REVIEW
    escalated = harness.payloads(harness.topics.workflow_events)[-1]
    assert isinstance(escalated, TaskEscalated)
    assert escalated.reason == REASON

    decision = DecisionRecorded(
        escalation_id=escalation.id,
        workflow_id="goal-1",
        task_id=escalation.task_id,
        action="approve",
        reviewer="ada",
        version=escalation.version,
        digest=escalation.digest,
    )
    harness.intake.handle(
        [harness.delivery(Event(decision, source="waypost/review"), harness.topics.decisions)]
    )

    after = harness.state("goal-1")
    assert after is not None
    assert after.escalations[escalation.id].status is EscalationStatus.RESOLVED
    assert after.tasks["echo"].status is TaskStatus.DISPATCHED
    first, second = harness.payloads(harness.topics.tasks("echo"))
    assert isinstance(first, TaskDispatched)
    assert isinstance(second, TaskDispatched)
    assert first.approvals is None
    assert second.attempt == 2
    assert second.approvals == [
        ApprovalGrant(
            action="refund", params_digest=DIGEST, approved_by="ada", escalation_id=escalation.id
        )
    ]
