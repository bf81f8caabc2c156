"""Actions that wait for a reviewer's approval (pure): a governance policy's
``require_approval`` becomes an escalation, and an approval travels with the task.

An agent that proposes such an action (``ctx.act``) ends its attempt with a
``task.failed`` that names the action (``TaskAttemptFailed.approval``). The task then
waits for a reviewer in an escalation of kind ``policy_approval`` whose reason is the
policy's and whose content shows the action, its parameters' SHA-256 and size, its data
scopes and the rule. Approving runs the step again (``review.review_input``); every
dispatch of the task carries the approvals given so far (``granted``), so the agent's
``ctx.act`` with the same action and parameters is allowed, audited with the
reviewer's name. Retrying runs it again without a new approval; rejecting follows the
step's ``on_reject``. The content shows the action's risk level, and the escalation needs
as many reviewers' approvals as the policy asks (two under four eyes, ``four_eyes.py``),
or as the step's ``review.approvals`` if that is more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.playbooks.model import Step
from orchestrator.workflow.escalation import escalate
from orchestrator.workflow.four_eyes import approvers
from orchestrator.workflow.messages import ActionApproval, Decision, TaskAttemptFailed
from orchestrator.workflow.review import POLICY_APPROVAL
from orchestrator.workflow.state import TaskState, WorkflowState
from orchestrator.workflow.transitions import Environment, attempt_capability, close_attempt


@dataclass(frozen=True, slots=True)
class Granted:
    """A reviewer's approval of ``action`` with parameters of digest ``params_digest``."""

    action: str
    params_digest: str
    approved_by: str
    escalation_id: str


def approval_needed(
    state: WorkflowState, task: TaskState, step: Step, event: TaskAttemptFailed, env: Environment
) -> Decision:
    """The attempt stopped at an action that needs approval: wait for a reviewer."""
    approval = event.approval
    assert approval is not None
    # Nothing went wrong with the capability: the circuit neither counts nor blocks it.
    env.circuits.record(
        "released",
        attempt_capability(task, step, event.attempt),
        workflow_id=state.id,
        task_id=task.id,
        now=env.now,
    )
    attempts = close_attempt(task.attempts, task.attempt, env.now, "approval_required", None)
    risk, approvals, rule = demand(approval)
    shown = {
        "output": None,
        "confidence": None,
        "reasoning": list(event.reasoning),
        "proposed_action": {
            "name": approval.action,
            "params_digest": approval.params_digest,
            "params_size": approval.params_size,
            "scopes": list(approval.scopes),
            "risk": risk,
            "rule": rule,
        },
    }
    waiting = task.evolve(proposal=None, error=None, attempts=attempts)
    return escalate(
        state,
        waiting,
        step,
        attempt=event.attempt,
        kind=POLICY_APPROVAL,
        reason=approval.reason,
        shown=shown,
        now=env.now,
        approvals=approvals,
    )


def demand(approval: ActionApproval) -> tuple[str, int, dict[str, Any] | None]:
    """How risky the policies say the action is, how many different reviewers must
    approve it (two under a policy's ``four_eyes_from``), and the rule that holds it (an
    older agent sends neither of the first two: ``low``, one reviewer)."""
    return approval.risk, max(1, approval.approvals), dict(approval.rule) if approval.rule else None


def granted(state: WorkflowState, task_id: str) -> tuple[Granted, ...]:
    """Every approval reviewers gave to actions of a task, oldest first."""
    found = []
    for escalation in sorted(state.escalations.values(), key=lambda e: (e.opened_at, e.id)):
        decision = escalation.decision
        action = escalation.content.get("proposed_action")
        if (
            escalation.task_id != task_id
            or escalation.kind != POLICY_APPROVAL
            or decision is None
            or decision.action != "approve"
            or not isinstance(action, Mapping)
        ):
            continue
        # Under four eyes every reviewer who approved is named ("ann, bob").
        approved_by = ", ".join(approvers(escalation)) or decision.reviewer
        found.append(Granted(action["name"], action["params_digest"], approved_by, escalation.id))
    return tuple(found)
