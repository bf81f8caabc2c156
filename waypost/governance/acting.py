"""Governing one task's actions: what ``AgentContext.act`` does in the agent runtime.

    governed = TaskGovernance(governor, agent="reply", capability="reply",
                              workflow_id="wf-1", task_id="t-1", approvals=())
    governed.act("send_email", {"to": "ada@example.com"}, scopes=["crm.contacts"])
    ...                                              # the handler takes the action
    governed.settle(Spend(tokens=1500), at=now)      # what the task really spent
    governed.events                                  # for the governance topic

Each ``act`` builds a ``Proposal`` (the parameters by digest and size, never the
parameters), decides it through the governor (audited, counted when allowed), keeps its
``policy.decided`` event and the budget events it crossed, and returns the decision when
it allows the action; otherwise it raises the refusal (``errors.refusal``). A reviewer's
approval of the same action with the same parameters (``Approval``) is passed on as
``approved_by``. ``settle`` adds what the task spent beyond what its ``act`` calls
reserved. One instance serves one task, in one thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry import trace

from waypost.events.payloads import Payload
from waypost.governance.engine import digest_params
from waypost.governance.errors import refusal
from waypost.governance.events import budget_events, decided
from waypost.governance.gate import Governor
from waypost.governance.model import BudgetNotice, PolicyDecision, Proposal, Spend
from waypost.sdk import Approval
from waypost.telemetry.logs import log_decision

_ACTION = re.compile(r"^[a-z][a-z0-9_.:/-]{0,99}$")
_NOTHING = Spend()


@dataclass
class TaskGovernance:
    """The governor as one task sees it: its proposals, its events, what it reserved."""

    governor: Governor
    agent: str
    capability: str
    workflow_id: str | None
    task_id: str | None
    approvals: Sequence[Approval] = ()
    events: list[Payload] = field(default_factory=list)
    """``policy.decided`` and budget events, oldest first, to publish with the result."""
    reserved: Spend = field(default_factory=Spend)
    """What the allowed actions of this task estimated (and so reserved)."""
    checks: list[dict[str, Any]] = field(default_factory=list)
    """Each decision in short (action, outcome, rule, reason), for the decision log."""

    def act(
        self,
        action: str,
        params: Mapping[str, Any] | None = None,
        *,
        scopes: Iterable[str] = (),
        tokens: int = 0,
        cost_usd: float = 0.0,
    ) -> PolicyDecision:
        """Decide ``action``; the decision if allowed, else raise its refusal."""
        proposal = propose(
            action,
            params,
            agent=self.agent,
            capability=self.capability,
            workflow_id=self.workflow_id,
            task_id=self.task_id,
            scopes=scopes,
            estimate=_estimate(tokens, cost_usd),
            approvals=self.approvals,
        )
        decision = self.governor.decide(proposal)
        self._log(proposal, decision)
        self.events.append(decided(proposal, decision))
        self.events.extend(self._budget_events(decision.notices, decision.at))
        if not decision.allowed:
            raise refusal(decision, proposal)
        self.reserved = self.reserved + proposal.estimate
        return decision

    def _log(self, proposal: Proposal, decision: PolicyDecision) -> None:
        """One decision-log line and a span event (trace ids from the current span)."""
        check = {
            "action": proposal.action,
            "outcome": decision.outcome,
            "rule": _rule_name(decision),
            "reason": decision.reason,
        }
        self.checks.append(check)
        log_decision(
            "policy",
            {
                **check,
                "agent": proposal.agent,
                "capability": proposal.capability,
                "cause": decision.cause,
                "params_digest": proposal.params_digest,
                "scopes": sorted(proposal.scopes),
                "approved_by": proposal.approved_by,
                "workflow_id": proposal.workflow_id,
                "task_id": proposal.task_id,
                "audit_id": decision.audit_id,
                "context_digest": decision.context_digest,
            },
        )
        trace.get_current_span().add_event(
            "policy.decided",
            {k: v for k, v in check.items() if v is not None},
        )

    def settle(self, used: Spend, *, at: datetime) -> None:
        """Record what the task spent beyond its reservations (a model call's real usage),
        and keep the budget events that crossed a level."""
        extra = Spend(
            max(0, used.tokens - self.reserved.tokens),
            max(0.0, used.cost_usd - self.reserved.cost_usd),
        )
        if extra == Spend():
            return
        notices = self.governor.record_usage(
            agent=self.agent, capability=self.capability, workflow_id=self.workflow_id, spend=extra
        )
        self.reserved = self.reserved + extra
        self.events.extend(self._budget_events(notices, at))

    def _budget_events(self, notices: Iterable[BudgetNotice], at: datetime) -> list[Payload]:
        return list(
            budget_events(
                notices,
                agent=self.agent,
                capability=self.capability,
                workflow_id=self.workflow_id,
                task_id=self.task_id,
                at=at,
            )
        )


def propose(
    action: str,
    params: Mapping[str, Any] | None,
    *,
    agent: str,
    capability: str,
    workflow_id: str | None = None,
    task_id: str | None = None,
    scopes: Iterable[str] = (),
    estimate: Spend = _NOTHING,
    approvals: Sequence[Approval] = (),
) -> Proposal:
    """The proposal of an action (approved when ``approvals`` has the same action with
    parameters of the same digest); ValueError or TypeError for a malformed one."""
    if not isinstance(action, str) or not _ACTION.match(action):
        raise ValueError(
            f"action {action!r} must be lower-case letters, digits, '.', '_', '-', ':' or "
            "'/', starting with a letter (as policies name it)"
        )
    try:
        digest, size = digest_params(dict(params) if params is not None else {})
    except TypeError as exc:
        raise TypeError(f"the parameters of action {action!r} must be JSON values: {exc}") from None
    approved_by = next(
        (a.approved_by for a in approvals if (a.action, a.params_digest) == (action, digest)),
        None,
    )
    return Proposal(
        agent=agent,
        capability=capability,
        action=action,
        params_digest=digest,
        params_size=size,
        # A lone string is one scope, not its characters.
        scopes=frozenset([scopes] if isinstance(scopes, str) else scopes),
        estimate=estimate,
        workflow_id=workflow_id,
        task_id=task_id,
        approved_by=approved_by,
    )


def ungoverned(
    action: str,
    params: Mapping[str, Any] | None,
    *,
    agent: str,
    tokens: int = 0,
    cost_usd: float = 0.0,
    at: datetime,
) -> PolicyDecision:
    """The decision ``act`` returns when no policies are configured: allowed, recorded
    nowhere (the proposal is still checked, so a handler fails the same way either way)."""
    propose(action, params, agent=agent, capability=agent, estimate=_estimate(tokens, cost_usd))
    return PolicyDecision(
        "allow",
        "no_policy",
        f"no policies are configured (WAYPOST_POLICY_DIRS): {action!r} of agent {agent!r} "
        "is allowed and not recorded",
        at,
    )


def _rule_name(decision: PolicyDecision) -> str | None:
    """``policy@version:path`` of the rule that decided, for logs."""
    rule = decision.rule
    if rule is None:
        return None
    return f"{rule.policy}@{rule.version}" + (f":{rule.path}" if rule.path else "")


def _estimate(tokens: int, cost_usd: float) -> Spend:
    if tokens < 0 or cost_usd < 0:
        raise ValueError(f"estimates cannot be negative (tokens={tokens}, cost_usd={cost_usd})")
    return Spend(tokens=tokens, cost_usd=cost_usd)
