"""Testing a governed agent without Kafka or a database: ``ctx.act`` decides through a
``MemoryGate`` over the example's policy files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from refunds import RefundRequest, refunds

from waypost import AgentContext, Approval, TaskInfo
from waypost.governance import ApprovalRequired, MemoryGate, PolicySet
from waypost.governance.acting import TaskGovernance

POLICIES = Path(__file__).parent / "governance" / "policies"
REQUEST = RefundRequest(customer="ada@example.com", invoice="INV-7", amount_usd=120.0)


def context(gate: MemoryGate, approvals: tuple[Approval, ...] = ()) -> AgentContext:
    task = TaskInfo(
        workflow_id="wf-1",
        task_id="task-1",
        step="refund",
        capability="refunds",
        attempt=len(approvals) + 1,
        goal_type="refund.request",
        deadline=datetime.now(UTC) + timedelta(seconds=30),
        approvals=approvals,
    )
    governance = TaskGovernance(
        gate,
        agent="refunds",
        capability="refunds",
        workflow_id="wf-1",
        task_id="task-1",
        approvals=approvals,
    )
    return AgentContext(task=task, governance=governance)


def test_a_refund_waits_for_a_reviewer_then_runs_with_the_approval() -> None:
    gate = MemoryGate(PolicySet([POLICIES]))

    with pytest.raises(ApprovalRequired) as caught:
        refunds.run(REQUEST, context(gate))

    proposal = caught.value.proposal
    assert proposal is not None
    approval = Approval("refund", proposal.params_digest, "ada", "escalation-1")
    result = refunds.run(REQUEST, context(gate, (approval,)))
    assert result.output.emailed
    assert [(p.action, d.cause) for p, d in gate.decisions] == [
        ("refund", "approval"),
        ("refund", "approved"),
        ("send_email", "allowed"),
    ]


def test_an_approval_covers_only_the_parameters_it_was_given_for() -> None:
    gate = MemoryGate(PolicySet([POLICIES]))
    with pytest.raises(ApprovalRequired) as caught:
        refunds.run(REQUEST, context(gate))
    assert caught.value.proposal is not None
    approval = Approval("refund", caught.value.proposal.params_digest, "ada", "escalation-1")

    larger = REQUEST.model_copy(update={"amount_usd": 1200.0})
    with pytest.raises(ApprovalRequired):
        refunds.run(larger, context(gate, (approval,)))
