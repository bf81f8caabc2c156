"""Errors of governance.

WaypostError (waypost.errors)
└── GovernanceError
    ├── PolicyError          one policy file is invalid; lists every problem with its
    │                        field and line
    ├── InvalidPolicies      policy files were invalid at start-up (one PolicyError each)
    ├── ApprovalRequired     the action waits for a human; the runtime makes the task an
    │                        escalation carrying the policy's reason
    └── PolicyDenied         an action was refused; ``decision`` says by which rule and why
        ├── ActionForbidden  denied, not on the allow list, or outside its data scopes
        │                    (also a NonRetryableError: the same input is refused again)
        ├── BudgetStopped    a token or money budget is spent (also NonRetryableError)
        └── RateLimited      the rate window is full; a later attempt may pass
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from waypost.errors import NonRetryableError, WaypostError
from waypost.yamlfile import Problem as Problem  # re-exported

if TYPE_CHECKING:
    from waypost.governance.model import PolicyDecision, Proposal


class GovernanceError(WaypostError):
    """Base of governance errors."""


class PolicyError(GovernanceError):
    """A policy file is invalid: fix the fields it lists, then it is loaded again."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  {source}: {problem}" for problem in problems)
        super().__init__(f"invalid policy {source}:\n{listing}")


class InvalidPolicies(GovernanceError):
    """Policy files were invalid when first loaded (there was no good version to keep)."""

    def __init__(self, errors: list[PolicyError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(error) for error in errors))


class ApprovalRequired(GovernanceError):
    """The action needs a human's approval before it runs; ``proposal`` is the action
    (with its parameters' digest) the approval is for."""

    def __init__(self, decision: PolicyDecision, proposal: Proposal | None = None) -> None:
        self.decision = decision
        self.proposal = proposal
        super().__init__(decision.reason)


class PolicyDenied(GovernanceError):
    """A policy refused the action; ``decision`` names the rule and the reason."""

    def __init__(self, decision: PolicyDecision, proposal: Proposal | None = None) -> None:
        self.decision = decision
        self.proposal = proposal
        super().__init__(decision.reason)


class ActionForbidden(PolicyDenied, NonRetryableError):
    """Denied by a rule, missing from an allow list, or touching a scope it may not."""


class BudgetStopped(PolicyDenied, NonRetryableError):
    """A budget is spent (or this action would overspend it)."""


class RateLimited(PolicyDenied):
    """Too many such actions in the rate window; retrying later can succeed."""


def refusal(decision: PolicyDecision, proposal: Proposal | None = None) -> GovernanceError:
    """The exception ``ctx.act`` raises for a decision that is not ``allow``."""
    if decision.outcome == "allow":
        raise ValueError("an allowed action is not refused")
    if decision.outcome == "require_approval":
        return ApprovalRequired(decision, proposal)
    if decision.cause == "rate_limit":
        return RateLimited(decision, proposal)
    if decision.cause == "budget":
        return BudgetStopped(decision, proposal)
    return ActionForbidden(decision, proposal)
