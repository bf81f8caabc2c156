"""Spend against budgets, for people (pure): what each agent spent on a day next to the
per-day limits of the policies that govern it.

Every applicable policy's budget applies (restrictions add up), so an agent may have
several limits on one resource; each is listed with the rule that sets it, tightest
first. An agent is governed as its own capability (agents are declared by capability
today, docs/governance.md). Agents without spend that a policy names with a per-day
budget are listed too, at zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from waypost.governance.engine import Policies
from waypost.governance.model import Resource, RuleRef, Spend


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """One per-day limit on one resource of an agent, and how much of it is spent."""

    resource: Resource
    limit: float
    spent: float
    rule: RuleRef
    warn_at: float

    @property
    def share(self) -> float | None:
        """The part of the limit spent (1.0 and more: exhausted); None for a zero limit."""
        return self.spent / self.limit if self.limit > 0 else None

    @property
    def level(self) -> str:
        """ok, warning (past the policy's warn_at) or exhausted."""
        if self.spent >= self.limit:
            return "exhausted"
        return "warning" if self.spent >= self.warn_at * self.limit else "ok"


@dataclass(frozen=True, slots=True)
class AgentBudget:
    """An agent's spend on a day and the per-day limits on it."""

    agent: str
    spent: Spend
    lines: tuple[BudgetLine, ...] = ()


def day_budgets(spend: Mapping[str, Spend], policies: Policies | None) -> list[AgentBudget]:
    """Each agent's spend and limits, by agent; without policies, spend only."""
    if policies is None:
        return [AgentBudget(agent, spent) for agent, spent in sorted(spend.items())]
    named = {
        agent
        for policy in policies.policies
        if any(limit.period == "day" for limit in policy.budgets)
        for agent in policy.applies_to.agents | policy.applies_to.capabilities
    }
    agents = sorted(set(spend) | named)
    return [_budget(agent, spend.get(agent, Spend()), policies) for agent in agents]


def _budget(agent: str, spent: Spend, policies: Policies) -> AgentBudget:
    lines = [
        BudgetLine(
            limit.resource,
            limit.limit,
            spent.of(limit.resource),
            policy.ref(limit.path),
            policy.warn_at,
        )
        for policy in policies.applicable(agent, agent)
        for limit in policy.budgets
        if limit.period == "day"
    ]
    lines.sort(key=lambda line: (line.resource, line.limit, line.rule.policy))
    return AgentBudget(agent, spent, tuple(lines))
