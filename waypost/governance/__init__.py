"""Governance as data: policy files decide what agents may do, and every decision is audited.

    policies = PolicySet([Path("policies")])          # YAML files, reloaded when they change
    gate = Gate(engine, policies)                     # PostgreSQL counters + audit trail
    proposal = Proposal(agent="reply", capability="reply", action="send_email",
                        scopes=frozenset({"crm.contacts"}), estimate=Spend(cost_usd=0.01))
    decision = gate.decide(proposal)                  # audited; counted if allowed
    if not decision.allowed:
        raise refusal(decision)                       # PolicyDenied / ApprovalRequired

``loader`` reads and validates policy files (``policy.schema.json``), ``policyset`` keeps
them current, ``engine`` is the pure decision function, ``repository`` holds all SQL,
``gate`` joins them in one transaction per decision (``MemoryGate``: the same, in
memory), ``acting`` is what an agent's ``ctx.act`` does for one task, ``events`` builds
the bodies for the governance topic. See docs/governance.md.
"""

from waypost.governance.engine import Policies, check
from waypost.governance.errors import (
    ActionForbidden,
    ApprovalRequired,
    BudgetStopped,
    GovernanceError,
    InvalidPolicies,
    PolicyDenied,
    PolicyError,
    RateLimited,
    refusal,
)
from waypost.governance.gate import Gate, Governor, MemoryGate
from waypost.governance.loader import load_dirs, load_file, load_text
from waypost.governance.model import (
    BudgetNotice,
    Context,
    Policy,
    PolicyDecision,
    Proposal,
    RuleRef,
    Spend,
    Window,
)
from waypost.governance.policyset import PolicySet, Reload

__all__ = [
    "ActionForbidden",
    "ApprovalRequired",
    "BudgetNotice",
    "BudgetStopped",
    "Context",
    "Gate",
    "GovernanceError",
    "Governor",
    "InvalidPolicies",
    "MemoryGate",
    "Policies",
    "Policy",
    "PolicyDecision",
    "PolicyDenied",
    "PolicyError",
    "PolicySet",
    "Proposal",
    "RateLimited",
    "Reload",
    "RuleRef",
    "Spend",
    "Window",
    "check",
    "load_dirs",
    "load_file",
    "load_text",
    "refusal",
]
