"""The policy engine: a pure function from (policies, proposal, context) to a decision.

No I/O and no clock: the time comes in the context. The store reads the context the
engine asks for (``windows``), the engine decides, the store records the decision.

Precedence, when several policies apply to one proposal:

- Layers, most specific first: policies naming the agent, then those naming the task's
  capability, then those for everyone (``applies_to: "*"``); within a layer, by name.
- Restrictions add up across every layer: a deny rule, a rate limit, a budget or an
  approval rule of ANY applicable policy applies. Deny always wins.
- Grants are refined by the most specific layer that has them: the allow lists of the
  most specific layer with an allow list decide what is listed (an action must be on
  every allow list of that layer), and likewise for data scopes. A broader layer's list
  is then ignored, so a default-deny baseline for everyone can be widened per agent,
  but its deny rules cannot be lifted.

Checks run in this order and the first that refuses decides: deny rules, allow lists,
data scopes, budgets, rate limits, then approval rules and, last, a ``critical`` risk
level (``risk.py``), which needs a person's approval even without an approval rule.
Every decision carries the action's risk level and how many reviewers an approval of it
needs (two under ``four_eyes_from``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from waypost.governance.model import (
    ANY,
    LAYERS,
    BudgetLimit,
    BudgetNotice,
    Cause,
    Context,
    Layer,
    Level,
    Outcome,
    Policy,
    PolicyDecision,
    Proposal,
    RuleRef,
    Spend,
    Window,
)
from waypost.governance.risk import assess, reviewers_needed


@dataclass(frozen=True, slots=True)
class Policies:
    """An immutable set of loaded policies: what a ``PolicySet`` hands out."""

    policies: tuple[Policy, ...] = ()

    def applicable(self, agent: str, capability: str) -> list[Policy]:
        """The policies that govern this agent and capability, in precedence order."""
        return [policy for _, policy in _layered(self.policies, agent, capability)]

    def windows(self, proposal: Proposal) -> tuple[Window, ...]:
        """The rate windows whose counts ``check`` needs in the context for ``proposal``."""
        return windows(self.policies, proposal)

    def check(self, proposal: Proposal, context: Context) -> PolicyDecision:
        """Decide ``proposal`` (see ``check``)."""
        return check(self.policies, proposal, context)

    def current(self) -> Policies:
        """Itself: a fixed set of policies can stand where a ``PolicySet`` is expected."""
        return self

    @property
    def longest_window_s(self) -> float:
        """The longest rate window: recorded actions older than this are never counted."""
        return max((r.per_s for p in self.policies for r in p.rate_limits), default=0.0)


def windows(policies: Sequence[Policy], proposal: Proposal) -> tuple[Window, ...]:
    """The rate windows whose counts ``check`` needs in the context for ``proposal``."""
    needed = {
        limit.window
        for _, policy in _layered(policies, proposal.agent, proposal.capability)
        for limit in policy.rate_limits
        if limit.action in (proposal.action, ANY)
    }
    return tuple(sorted(needed, key=lambda w: (w.action, w.seconds)))


def check(policies: Sequence[Policy], proposal: Proposal, context: Context) -> PolicyDecision:
    """Allow, deny or require approval for ``proposal``, naming the rule that decided."""
    layered = _layered(policies, proposal.agent, proposal.capability)
    ordered = [policy for _, policy in layered]
    digest = context_digest(proposal, context)
    action = proposal.action
    risk = assess(ordered, action)

    def decide(
        outcome: Outcome,
        cause: Cause,
        reason: str,
        rule: RuleRef | None,
        notices: Iterable[BudgetNotice] = (),
    ) -> PolicyDecision:
        if outcome != "allow":  # nothing is spent, so no level is crossed
            notices = [replace(notice, crossed=False) for notice in notices]
        return PolicyDecision(
            outcome,
            cause,
            reason,
            context.now,
            rule,
            tuple(notices),
            digest,
            risk=risk.level,
            approvals=risk.approvals,
        )

    if not ordered:
        return decide(
            "allow",
            "no_policy",
            f"no policy applies to agent {proposal.agent!r} or capability {proposal.capability!r}",
            None,
        )
    for policy in ordered:
        for rule in policy.deny:
            if rule.matches(action):
                ref = policy.ref(rule.path)
                return decide(
                    "deny", "denied", _because(f"{action!r} is denied by {ref}", rule.reason), ref
                )
    allow_lists = _grant_layer(layered, lambda p: p.allow is not None)
    for policy in allow_lists:
        listed = policy.allow or frozenset()
        if action not in listed and ANY not in listed:
            ref = policy.ref("actions.allow")
            shown = ", ".join(sorted(listed)) or "nothing"
            return decide(
                "deny",
                "not_allowed",
                f"{action!r} is not on the allow list of {ref} (allowed: {shown})",
                ref,
            )
    for policy in _grant_layer(layered, lambda p: p.scopes is not None):
        granted = policy.granted_scopes(action)
        for scope in sorted(proposal.scopes):
            if not covers(granted, scope):
                ref = policy.ref(_scope_path(policy, action))
                shown = ", ".join(sorted(granted)) or "none"
                return decide(
                    "deny",
                    "scope",
                    f"{action!r} may not touch data scope {scope!r} under {ref} (granted: {shown})",
                    ref,
                )
    notices, stop = _budgets(ordered, proposal, context)
    if stop is not None:
        return decide("deny", "budget", stop[1], stop[0], notices)
    for policy in ordered:
        for limit in policy.rate_limits:
            if limit.action not in (action, ANY):
                continue
            count = _count(context.recent, limit.window)
            if count >= limit.limit:
                ref = policy.ref(limit.path)
                what = f"{action!r}" if limit.action == action else "actions"
                return decide(
                    "deny",
                    "rate_limit",
                    f"agent {proposal.agent!r} may take {what} at most {limit.limit} times per "
                    f"{limit.per} ({ref}); it took {count} in the last {limit.per}",
                    ref,
                    notices,
                )
    for policy in ordered:
        for rule in policy.approvals:
            if not rule.matches(action):
                continue
            ref = policy.ref(rule.path)
            if proposal.approved_by is None:
                reason = _because(f"{action!r} needs a human's approval under {ref}", rule.reason)
                reason += reviewers_needed(risk)
                return decide("require_approval", "approval", reason, ref, notices)
            reason = f"{action!r} was approved by {proposal.approved_by} ({ref} requires it)"
            return decide("allow", "approved", reason, ref, notices)
    if risk.critical and risk.rule is not None:
        # A critical action waits for a person even when no approval rule names it.
        if proposal.approved_by is None:
            reason = f"{action!r} is critical under {risk.rule}: a person must approve it"
            reason += reviewers_needed(risk)
            return decide("require_approval", "approval", reason, risk.rule, notices)
        approver = proposal.approved_by
        reason = f"{action!r} was approved by {approver} ({risk.rule} makes it critical)"
        return decide("allow", "approved", reason, risk.rule, notices)
    ref = allow_lists[0].ref("actions.allow") if allow_lists else ordered[0].ref()
    return decide("allow", "allowed", f"{action!r} is allowed by {ref}", ref, notices)


def usage_notices(
    policies: Sequence[Policy],
    *,
    agent: str,
    capability: str,
    workflow_id: str | None,
    today: tuple[Spend, Spend],
    workflow: tuple[Spend, Spend],
) -> tuple[BudgetNotice, ...]:
    """Budget levels reached by spend recorded after the fact: ``today`` and ``workflow``
    are (before, after) the spend was added."""
    notices: list[BudgetNotice] = []
    for _, policy in _layered(policies, agent, capability):
        for budget in policy.budgets:
            if budget.period == "workflow" and workflow_id is None:
                continue
            before, after = today if budget.period == "day" else workflow
            spent, projected = before.of(budget.resource), after.of(budget.resource)
            notices += _levels(policy, budget, spent, projected)
    return tuple(notices)


def digest_params(params: Any) -> tuple[str, int]:
    """SHA-256 and size in bytes of parameters as canonical JSON: what a proposal carries
    and the audit stores instead of the parameters themselves."""
    data = orjson.dumps(params, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest(), len(data)


def covers(granted: Iterable[str], scope: str) -> bool:
    """True if a granted scope covers ``scope``: ``crm`` covers ``crm`` and ``crm.contacts``,
    ``*`` covers every scope."""
    return any(g == ANY or scope == g or scope.startswith(g + ".") for g in granted)


def window_start(now: datetime, seconds: float) -> datetime:
    """Actions taken after this instant (not at it) count in a window of ``seconds``."""
    return now - timedelta(seconds=seconds)


def count_in_window(times: Iterable[datetime], now: datetime, seconds: float) -> int:
    """How many of ``times`` fall in the window of ``seconds`` ending at ``now``."""
    start = window_start(now, seconds)
    return sum(1 for at in times if start < at <= now)


def utc_day(now: datetime) -> str:
    """The UTC calendar day of ``now`` (``2025-01-31``): the period of daily budgets."""
    aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return aware.astimezone(UTC).date().isoformat()


def context_digest(proposal: Proposal, context: Context) -> str:
    """SHA-256 of everything a decision was computed from (besides the policies)."""
    document = {
        "proposal": {
            "agent": proposal.agent,
            "capability": proposal.capability,
            "action": proposal.action,
            "params_digest": proposal.params_digest,
            "params_size": proposal.params_size,
            "scopes": sorted(proposal.scopes),
            "estimate": [proposal.estimate.tokens, proposal.estimate.cost_usd],
            "workflow_id": proposal.workflow_id,
            "task_id": proposal.task_id,
            "approved_by": proposal.approved_by,
        },
        "now": context.now.isoformat(),
        "recent": sorted([w.action, w.seconds, n] for w, n in context.recent.items()),
        "spent_today": [context.spent_today.tokens, context.spent_today.cost_usd],
        "spent_in_workflow": [context.spent_in_workflow.tokens, context.spent_in_workflow.cost_usd],
    }
    return hashlib.sha256(orjson.dumps(document)).hexdigest()


def _layered(policies: Iterable[Policy], agent: str, capability: str) -> list[tuple[Layer, Policy]]:
    found = [
        (layer, policy)
        for policy in policies
        if (layer := policy.applies_to.layer(agent, capability)) is not None
    ]
    return sorted(found, key=lambda item: (LAYERS.index(item[0]), item[1].name))


def _grant_layer(
    layered: list[tuple[Layer, Policy]], has: Callable[[Policy], bool]
) -> list[Policy]:
    """The policies of the most specific layer in which some policy has the grant."""
    for layer in LAYERS:
        tier = [policy for at, policy in layered if at == layer and has(policy)]
        if tier:
            return tier
    return []


def _budgets(
    ordered: list[Policy], proposal: Proposal, context: Context
) -> tuple[list[BudgetNotice], tuple[RuleRef, str] | None]:
    notices: list[BudgetNotice] = []
    stop: tuple[RuleRef, str] | None = None
    for policy in ordered:
        for budget in policy.budgets:
            if budget.period == "workflow" and proposal.workflow_id is None:
                continue
            spent_so_far = (
                context.spent_today if budget.period == "day" else context.spent_in_workflow
            )
            spent = spent_so_far.of(budget.resource)
            estimate = proposal.estimate.of(budget.resource)
            notices += _levels(policy, budget, spent, spent + estimate)
            if stop is None and (spent >= budget.limit or spent + estimate > budget.limit):
                stop = (
                    policy.ref(budget.path),
                    _stop_reason(proposal, budget, spent, estimate, policy),
                )
    return notices, stop


def _levels(
    policy: Policy, budget: BudgetLimit, spent: float, projected: float
) -> list[BudgetNotice]:
    """A warning at ``warn_at`` of the limit and an exhaustion at the limit, if reached."""
    found = []
    levels: tuple[tuple[Level, float], ...] = (
        ("warning", policy.warn_at * budget.limit),
        ("exhausted", budget.limit),
    )
    for level, threshold in levels:
        if projected >= threshold:
            found.append(
                BudgetNotice(
                    level,
                    budget.period,
                    budget.resource,
                    budget.limit,
                    spent,
                    projected,
                    crossed=spent < threshold,
                    rule=policy.ref(budget.path),
                )
            )
    return found


def _stop_reason(
    proposal: Proposal, budget: BudgetLimit, spent: float, estimate: float, policy: Policy
) -> str:
    period = "daily" if budget.period == "day" else "per-workflow"
    name = "token" if budget.resource == "tokens" else "money"
    ref = policy.ref(budget.path)
    amount = _tokens if budget.resource == "tokens" else _usd
    if spent >= budget.limit:
        return (
            f"agent {proposal.agent!r} has used up its {period} {name} budget: "
            f"{amount(spent)} of {amount(budget.limit)} ({ref})"
        )
    return (
        f"{proposal.action!r} would overspend the {period} {name} budget of agent "
        f"{proposal.agent!r}: {amount(spent)} spent + {amount(estimate)} estimated > "
        f"{amount(budget.limit)} ({ref})"
    )


def _tokens(value: float) -> str:
    return f"{value:,.0f} tokens"


def _usd(value: float) -> str:
    if abs(value * 100 - round(value * 100)) < 1e-9:
        return f"${value:,.2f}"
    return f"${value:,.6f}".rstrip("0")


def _count(recent: Mapping[Window, int], window: Window) -> int:
    try:
        return recent[window]
    except KeyError:
        raise KeyError(
            f"the context has no count for {window}; read the counts of Policies.windows(proposal)"
        ) from None


def _scope_path(policy: Policy, action: str) -> str:
    scopes = policy.scopes or {}
    if action in scopes:
        return f"scopes.{action}"
    return f"scopes.{ANY}" if ANY in scopes else "scopes"


def _because(text: str, reason: str) -> str:
    return f"{text}: {reason}" if reason else text
