"""Four eyes (pure): escalations whose output needs more than one reviewer's approval.

A step's ``review: {approvals: 2}``, or a governance policy's ``four_eyes_from`` for an
action it holds for approval, sets an escalation's ``required_approvals``. Approving and
editing are then *approvals of an output*:

- ``approve`` approves the output awaiting approval: the agent's, or the last edit's;
- ``edit`` proposes another output and counts as its author's approval of it; approvals
  given before were of another output, so they no longer count;
- the decision is complete once ``required_approvals`` different reviewers approved the
  same output. Until then the escalation stays pending: its version goes up (a page
  showing the old version is stale), and its claim is released so that another
  reviewer can take it. Completing an edit's approval decides ``edit`` with that output;
- a reviewer who approved (or whose edit awaits approval) cannot approve again
  (``review.refuse_repeated_approval``);
- ``reject`` and ``retry`` take effect at once, whoever gives them.

Only a complete decision reaches the workflow: the review operations
(``orchestrator/review.py``) publish a decision once it is complete, and the
orchestrator (``resolution.unappliable``) refuses any other approval of such an
escalation (``incomplete``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from orchestrator.workflow.state import EscalationState, EscalationStatus, ReviewDecision

APPROVING = ("approve", "edit")
"""The decisions that approve an output (and so count towards ``required_approvals``)."""


def approvers(escalation: EscalationState) -> tuple[str, ...]:
    """Who approved the output awaiting approval so far, oldest first."""
    return tuple(approval.reviewer for approval in escalation.approvals)


def awaiting_output(escalation: EscalationState) -> Mapping[str, Any] | None:
    """The edited output the approvals so far are of (None: the agent's own output)."""
    first = escalation.approvals[0] if escalation.approvals else None
    return first.output if first is not None and first.action == "edit" else None


def accept(escalation: EscalationState, decision: ReviewDecision) -> EscalationState:
    """The escalation once the rules accepted ``decision``, one version on: still pending
    while its output needs more approvals, else decided with the decision that completes
    it."""
    version = escalation.version + 1
    if decision.action not in APPROVING:
        return escalation.evolve(
            status=EscalationStatus.DECIDED, version=version, decision=decision
        )
    approvals = (decision,) if decision.action == "edit" else (*escalation.approvals, decision)
    if len(approvals) < escalation.required_approvals:
        return escalation.evolve(
            version=version, approvals=approvals, assignee=None, claimed_at=None
        )
    return escalation.evolve(
        status=EscalationStatus.DECIDED,
        version=version,
        approvals=approvals,
        decision=_completing(approvals, decision),
    )


def progress(escalation: EscalationState) -> dict[str, int]:
    """How many approvals the output has and needs, for the audit trail."""
    return {
        "approvals": len(escalation.approvals),
        "required_approvals": escalation.required_approvals,
    }


def incomplete(escalation: EscalationState, decision: ReviewDecision) -> str | None:
    """Why the orchestrator must not apply ``decision``, an approval that did not come
    through the review operations (which record every approval and publish only the one
    that completes them), to an escalation that needs several; None when it may."""
    if decision.action not in APPROVING or escalation.required_approvals <= 1:
        return None
    return (
        f"it needs the approval of {escalation.required_approvals} different reviewers, "
        "which only the review console and API record"
    )


def _completing(approvals: tuple[ReviewDecision, ...], decision: ReviewDecision) -> ReviewDecision:
    """The decision the workflow resumes with: approving an edit decides the edit."""
    first = approvals[0]
    if decision.action == "approve" and first.action == "edit":
        return replace(
            decision, action="edit", output=first.output, reason=decision.reason or first.reason
        )
    return decision
