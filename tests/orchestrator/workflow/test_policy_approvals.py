"""Actions a governance policy holds for approval, in the state machine: the attempt
becomes an escalation, approving runs the step again with the approval, rejecting
follows on_reject. Pure: no fixtures, a clock only the test moves."""

from __future__ import annotations

from orchestrator.workflow.approvals import Granted, granted
from orchestrator.workflow.escalation import canonical_digest
from orchestrator.workflow.machine import RATE_LIMITED
from orchestrator.workflow.messages import (
    ActionApproval,
    AnnounceTaskEscalated,
    Decision,
    DispatchTask,
    RecordReviewEvent,
    TaskAttemptFailed,
)
from orchestrator.workflow.review import POLICY_APPROVAL
from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    TaskError,
    TaskStatus,
    WorkflowStatus,
)
from tests.orchestrator.workflow.harness import WORKFLOW_ID, Run, load_playbook
from tests.orchestrator.workflow.resilience import BreakerRun
from tests.orchestrator.workflow.test_review import decide, open_escalation_of

GOVERNED = """\
type: governed
steps:
  - name: refund
    capability: billing
    timeout: 30s
    retries: 0
    input: {amount: $goal.amount}
    review: {group: finance, priority: 2, sla: 1h}
    on_reject: fail
  - name: notify
    capability: mailer
    depends_on: [refund]
"""
DIGEST = "d" * 64
REASON = (
    "'refund' needs a human's approval under policy 'billing' v3 require_approval[0] "
    "(policies/billing.yaml:9): refunds move money"
)
RULE = {
    "policy": "billing",
    "file": "policies/billing.yaml",
    "version": 3,
    "digest": "e" * 64,
    "path": "require_approval[0]",
    "line": 9,
}


def asking(run: Run, *, digest: str = DIGEST) -> Decision:
    """The `refund` attempt stops at an action that needs approval."""
    task = run.task("refund")
    approval = ActionApproval("refund", digest, 27, REASON, scopes=("billing.invoices",), rule=RULE)
    error = TaskError("ApprovalRequired", REASON, retryable=False)
    return run.apply(
        TaskAttemptFailed(task.id, task.attempt, error, approval, reasoning=("refund 120",))
    )


def waiting_for_approval() -> tuple[Run, EscalationState]:
    run = Run(load_playbook(GOVERNED), {"amount": 120})
    run.start()
    run.advance(1)
    asking(run)
    return run, open_escalation_of(run, "refund")


def test_an_action_needing_approval_opens_an_escalation_showing_the_action() -> None:
    run = Run(load_playbook(GOVERNED), {"amount": 120})
    run.start()
    run.advance(1)

    decision = asking(run)

    escalation = open_escalation_of(run, "refund")
    task = run.task("refund")
    assert decision.commands == (
        AnnounceTaskEscalated(escalation),
        RecordReviewEvent(escalation, "opened", "waypost", {"reason": REASON}),
    )
    assert (escalation.kind, escalation.reason, escalation.attempt) == (POLICY_APPROVAL, REASON, 1)
    assert (escalation.group, escalation.status) == ("finance", EscalationStatus.PENDING)
    assert escalation.content == {
        "workflow_id": WORKFLOW_ID,
        "goal_type": "governed",
        "step": "refund",
        "capability": "billing",
        "attempt": 1,
        "goal_input": {"amount": 120},
        "task_input": {"amount": 120},
        "output": None,
        "confidence": None,
        "reasoning": ["refund 120"],
        "proposed_action": {
            "name": "refund",
            "params_digest": DIGEST,
            "params_size": 27,
            "scopes": ["billing.invoices"],
            "risk": "low",
            "rule": RULE,
        },
        "reason": REASON,
    }
    assert escalation.digest == canonical_digest(escalation.content)
    assert (task.status, task.proposal, task.error) == (TaskStatus.AWAITING_REVIEW, None, None)
    assert [a.outcome for a in task.attempts] == ["approval_required"]
    assert run.state.status is WorkflowStatus.RUNNING
    assert run.task("notify").status is TaskStatus.PENDING
    assert granted(run.state, task.id) == ()


def test_approving_runs_the_step_again_carrying_the_approval() -> None:
    run, escalation = waiting_for_approval()
    run.advance(5)

    decision = decide(run, escalation, "approve", reviewer="ada")

    task = run.task("refund")
    (dispatch,) = [c for c in decision.commands if isinstance(c, DispatchTask)]
    assert dispatch.task.attempt == 2
    assert (task.status, task.first_valid_attempt) == (TaskStatus.DISPATCHED, 2)
    # The attempt that asked for approval does not use up the step's retries.
    assert task.max_attempts == 2
    assert run.state.escalations[escalation.id].status is EscalationStatus.RESOLVED
    assert granted(run.state, task.id) == (Granted("refund", DIGEST, "ada", escalation.id),)

    run.succeed("refund", {"refunded": 120})

    assert run.task("refund").status is TaskStatus.COMPLETED
    assert run.task("notify").status is TaskStatus.DISPATCHED


def test_every_approval_of_the_task_travels_with_its_later_dispatches() -> None:
    run, first = waiting_for_approval()
    decide(run, first, "approve", reviewer="ada")
    run.advance(1)
    asking(run, digest="f" * 64)  # the approved attempt proposes another action
    second = open_escalation_of(run, "refund")

    decide(run, second, "approve", reviewer="grace")

    assert [
        (g.params_digest, g.approved_by) for g in granted(run.state, run.task("refund").id)
    ] == [
        (DIGEST, "ada"),
        ("f" * 64, "grace"),
    ]
    assert run.task("refund").attempt == 3


def test_retrying_runs_the_step_again_without_a_new_approval() -> None:
    run, escalation = waiting_for_approval()

    decision = decide(run, escalation, "retry")

    assert [c.task.attempt for c in decision.commands if isinstance(c, DispatchTask)] == [2]
    assert granted(run.state, run.task("refund").id) == ()


def test_rejecting_follows_on_reject() -> None:
    run, escalation = waiting_for_approval()

    decide(run, escalation, "reject", reason="Too much.")

    assert run.state.status is WorkflowStatus.FAILED
    assert run.state.reason == "reviewer ada rejected step 'refund': Too much."
    assert run.task("refund").status is TaskStatus.FAILED
    assert granted(run.state, run.task("refund").id) == ()


def test_there_is_no_output_to_edit() -> None:
    run, escalation = waiting_for_approval()

    decision = decide(run, escalation, "edit", output={"refunded": 0})

    assert not decision.applied
    assert decision.note is not None
    assert "no output to edit" in decision.note
    assert run.task("refund").status is TaskStatus.AWAITING_REVIEW


def test_a_stale_request_for_approval_changes_nothing() -> None:
    run, escalation = waiting_for_approval()
    decide(run, escalation, "approve")

    task = run.task("refund")
    repeated = run.apply(
        TaskAttemptFailed(
            task.id,
            1,
            TaskError("ApprovalRequired", REASON, retryable=False),
            ActionApproval("refund", DIGEST, 27, REASON),
        )
    )

    assert not repeated.applied
    assert len(run.state.escalations) == 1


def test_asking_for_approval_and_being_rate_limited_leave_the_circuit_alone() -> None:
    run = BreakerRun(load_playbook(GOVERNED), {"amount": 1})
    run.start()
    asking(run)
    approved = open_escalation_of(run, "refund")
    decide(run, approved, "approve")
    task = run.task("refund")

    run.apply(TaskAttemptFailed(task.id, task.attempt, TaskError(RATE_LIMITED, "too many", True)))

    assert run.book.get("billing").failures == ()
    assert run.task("refund").status is TaskStatus.FAILED  # its one real attempt was used
