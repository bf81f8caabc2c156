"""Spend against per-day budgets, pure: which limits apply to an agent, tightest first,
with the rule that sets each, and how far each is spent."""

from __future__ import annotations

from waypost.governance.budgets import AgentBudget, day_budgets
from waypost.governance.engine import Policies
from waypost.governance.loader import load_text
from waypost.governance.model import Spend

REPLY = """\
name: support-reply
version: 3
applies_to:
  agents: [reply]
budgets:
  per_day: {tokens: 200000, cost_usd: 5.00}
  per_workflow: {tokens: 20000}
  warn_at: 0.5
"""
EVERYONE = """\
name: baseline
version: 1
applies_to: "*"
budgets:
  per_day: {tokens: 1000000}
"""
TRIAGE = """\
name: triage-only
version: 2
applies_to:
  capabilities: [triage]
budgets:
  per_day: {cost_usd: 0}
"""


def policies() -> Policies:
    return Policies(
        tuple(
            load_text(text, source=f"policies/{name}.yaml", default_name=name)
            for name, text in (("reply", REPLY), ("baseline", EVERYONE), ("triage", TRIAGE))
        )
    )


def test_each_per_day_limit_of_every_applicable_policy_is_listed_tightest_first() -> None:
    (reply,) = [
        b for b in day_budgets({"reply": Spend(150_000, 1.0)}, policies()) if b.agent == "reply"
    ]

    lines = [(b.resource, b.limit, b.spent, b.rule.policy, b.rule.path) for b in reply.lines]
    assert lines == [
        ("cost_usd", 5.0, 1.0, "support-reply", "budgets.per_day.cost_usd"),
        ("tokens", 200_000, 150_000, "support-reply", "budgets.per_day.tokens"),
        ("tokens", 1_000_000, 150_000, "baseline", "budgets.per_day.tokens"),
    ]
    tokens = reply.lines[1]
    assert tokens.rule.file == "policies/reply.yaml"
    assert tokens.rule.line == 6
    assert tokens.share == 0.75
    assert tokens.level == "warning"  # past warn_at 0.5
    assert reply.lines[0].level == "ok"


def test_agents_a_policy_names_are_listed_without_spend_and_zero_limits_are_exhausted() -> None:
    budgets = {b.agent: b for b in day_budgets({}, policies())}

    assert sorted(budgets) == ["reply", "triage"]
    (money, tokens) = budgets["triage"].lines
    assert (money.limit, money.spent, money.share, money.level) == (0.0, 0.0, None, "exhausted")
    assert (tokens.rule.policy, tokens.level) == ("baseline", "ok")


def test_without_policies_only_the_spend_is_known() -> None:
    spend = {"reply": Spend(10, 0.5), "echo": Spend(3, 0.0)}

    assert day_budgets(spend, None) == [
        AgentBudget("echo", Spend(3, 0.0)),
        AgentBudget("reply", Spend(10, 0.5)),
    ]
