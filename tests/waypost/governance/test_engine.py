"""The pure policy engine: no files, no database, the time given in the context."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waypost.errors import NonRetryableError
from waypost.governance import (
    ActionForbidden,
    ApprovalRequired,
    BudgetStopped,
    Context,
    Policies,
    PolicyDecision,
    Proposal,
    RateLimited,
    Spend,
    Window,
    load_text,
    refusal,
)
from waypost.governance.engine import (
    context_digest,
    count_in_window,
    covers,
    digest_params,
    usage_notices,
    utc_day,
    window_start,
)

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
NOTHING = Spend()


def policies(*documents: str) -> Policies:
    """Policies from YAML texts; each text's first line is a comment naming its file."""
    loaded = []
    for document in documents:
        source = document.strip().splitlines()[0].removeprefix("#").strip()
        loaded.append(load_text(document, source=source, default_name=source.split(".")[0]))
    return Policies(tuple(loaded))


def propose(action: str = "send_email", **fields: object) -> Proposal:
    values: dict[str, object] = {"agent": "reply", "capability": "support", "action": action}
    values.update(fields)
    return Proposal(**values)  # type: ignore[arg-type]


def decide(
    rules: Policies,
    proposal: Proposal,
    *,
    recent: dict[Window, int] | None = None,
    today: Spend = NOTHING,
    workflow: Spend = NOTHING,
) -> PolicyDecision:
    needed = {window: 0 for window in rules.windows(proposal)}
    needed.update(recent or {})
    context = Context(NOW, needed, today, workflow)
    return rules.check(proposal, context)


GLOBAL_DENY = """
# everyone.yaml
version: 1
applies_to: "*"
actions:
  deny:
    - {action: drop_table, reason: nobody drops tables}
"""

REPLY = """
# reply.yaml
version: 4
applies_to: {agents: [reply]}
actions:
  allow: [send_email, search_kb, drop_table, refund]
  deny: [delete_customer]
"""


# --- who a policy applies to ----------------------------------------------------------------


def test_without_a_policy_for_the_agent_everything_is_allowed_and_says_so() -> None:
    decision = decide(policies(REPLY), propose(agent="triage", capability="triage"))

    assert decision.outcome == "allow"
    assert decision.cause == "no_policy"
    assert decision.rule is None
    assert decision.reason == "no policy applies to agent 'triage' or capability 'triage'"
    assert decision.at == NOW


def test_a_policy_applies_by_agent_by_capability_or_to_everyone() -> None:
    by_capability = """
# support.yaml
version: 1
applies_to: {capabilities: [support]}
actions: {deny: [send_email]}
"""
    rules = policies(by_capability)

    assert decide(rules, propose()).outcome == "deny"
    assert decide(rules, propose(capability="billing")).outcome == "allow"
    assert [p.name for p in policies(GLOBAL_DENY, REPLY).applicable("reply", "x")] == [
        "reply",
        "everyone",
    ]


# --- deny and allow lists -------------------------------------------------------------------


def test_deny_beats_allow_in_the_same_policy() -> None:
    both = """
# both.yaml
version: 1
applies_to: {agents: [reply]}
actions: {allow: [send_email], deny: [send_email]}
"""
    decision = decide(policies(both), propose())

    assert decision.outcome == "deny"
    assert decision.cause == "denied"
    assert decision.rule is not None
    assert decision.rule.path == "actions.deny[0]"


def test_a_deny_for_everyone_beats_an_agents_allow_list_and_names_the_rule() -> None:
    decision = decide(policies(REPLY, GLOBAL_DENY), propose("drop_table"))

    assert decision.outcome == "deny"
    assert decision.cause == "denied"
    assert decision.rule is not None
    assert (decision.rule.policy, decision.rule.file, decision.rule.version) == (
        "everyone",
        "everyone.yaml",
        1,
    )
    assert (decision.rule.path, decision.rule.line) == ("actions.deny[0]", 7)
    assert decision.reason == (
        "'drop_table' is denied by policy 'everyone' v1 actions.deny[0] (everyone.yaml:7): "
        "nobody drops tables"
    )


def test_an_allow_list_denies_what_it_does_not_list() -> None:
    rules = policies(REPLY)

    allowed = decide(rules, propose("search_kb"))
    unlisted = decide(rules, propose("wire_money"))

    assert allowed.outcome == "allow"
    assert allowed.cause == "allowed"
    assert allowed.rule is not None
    assert allowed.rule.path == "actions.allow"
    assert unlisted.outcome == "deny"
    assert unlisted.cause == "not_allowed"
    assert unlisted.rule is not None
    assert unlisted.rule.path == "actions.allow"
    assert "(allowed: drop_table, refund, search_kb, send_email)" in unlisted.reason


def test_without_an_allow_list_anything_not_denied_is_allowed() -> None:
    decision = decide(policies(GLOBAL_DENY), propose("anything"))

    assert decision.outcome == "allow"
    assert decision.rule is not None
    assert decision.rule.path == ""  # the policy as a whole


@pytest.mark.parametrize(("listed", "outcome"), [("[]", "deny"), ('["*"]', "allow")])
def test_an_empty_allow_list_allows_nothing_and_a_star_everything(
    listed: str, outcome: str
) -> None:
    document = f"""
# p.yaml
version: 1
applies_to: "*"
actions: {{allow: {listed}}}
"""
    assert decide(policies(document), propose("whatever")).outcome == outcome


def test_a_deny_star_denies_every_action() -> None:
    document = """
# p.yaml
version: 1
applies_to: {agents: [reply]}
actions: {deny: ["*"]}
"""
    assert decide(policies(document), propose("search_kb")).cause == "denied"


BASELINE = """
# baseline.yaml
version: 1
applies_to: "*"
actions:
  allow: [search_kb]
"""


def test_a_more_specific_allow_list_replaces_a_broader_one() -> None:
    rules = policies(BASELINE, REPLY)

    assert decide(rules, propose("send_email")).outcome == "allow"  # reply's list
    assert decide(rules, propose("send_email", agent="triage")).cause == "not_allowed"
    assert decide(rules, propose("search_kb", agent="triage")).outcome == "allow"


def test_the_agent_layer_is_more_specific_than_the_capability_layer() -> None:
    capability = """
# support.yaml
version: 1
applies_to: {capabilities: [support]}
actions: {allow: [search_kb]}
"""
    rules = policies(capability, REPLY)

    assert decide(rules, propose("refund")).outcome == "allow"
    decision = decide(rules, propose("refund", agent="other"))
    assert decision.cause == "not_allowed"
    assert decision.rule is not None
    assert decision.rule.policy == "support"


def test_within_one_layer_every_allow_list_must_list_the_action() -> None:
    second = """
# reply-security.yaml
version: 1
applies_to: {agents: [reply]}
actions: {allow: [search_kb]}
"""
    rules = policies(REPLY, second)

    assert decide(rules, propose("search_kb")).outcome == "allow"
    decision = decide(rules, propose("send_email"))
    assert decision.cause == "not_allowed"
    assert decision.rule is not None
    assert decision.rule.policy == "reply-security"


# --- data scopes ----------------------------------------------------------------------------

SCOPES = """
# scopes.yaml
version: 1
applies_to: {agents: [reply]}
scopes:
  send_email: [crm.contacts, tickets]
  "*": [kb]
"""


def test_an_action_may_touch_its_granted_scopes_and_what_is_under_them() -> None:
    rules = policies(SCOPES)
    scopes = frozenset({"crm.contacts", "tickets.comments", "kb.articles"})

    assert decide(rules, propose(scopes=scopes)).outcome == "allow"


def test_an_action_touching_a_scope_it_is_not_granted_is_denied() -> None:
    rules = policies(SCOPES)

    decision = decide(rules, propose(scopes=frozenset({"crm.contacts", "crm.payments"})))

    assert decision.outcome == "deny"
    assert decision.cause == "scope"
    assert decision.rule is not None
    assert decision.rule.path == "scopes.send_email"
    assert "may not touch data scope 'crm.payments'" in decision.reason
    # An action without its own entry gets only what "*" grants.
    other = decide(rules, propose("search_kb", scopes=frozenset({"tickets"})))
    assert other.cause == "scope"
    assert other.rule is not None
    assert other.rule.path == "scopes.*"


def test_without_scope_rules_any_scope_may_be_touched() -> None:
    assert decide(policies(REPLY), propose(scopes=frozenset({"payroll"}))).outcome == "allow"


def test_the_most_specific_scope_rules_replace_broader_ones() -> None:
    broad = """
# broad.yaml
version: 1
applies_to: "*"
scopes: {"*": []}
"""
    rules = policies(broad, SCOPES)

    assert decide(rules, propose(scopes=frozenset({"crm.contacts"}))).outcome == "allow"
    assert decide(rules, propose(agent="x", scopes=frozenset({"kb"}))).cause == "scope"


@pytest.mark.parametrize(
    ("granted", "scope", "covered"),
    [
        (["crm"], "crm", True),
        (["crm"], "crm.contacts", True),
        (["crm"], "crmx", False),
        (["crm.contacts"], "crm", False),
        (["*"], "anything.at.all", True),
        ([], "crm", False),
    ],
)
def test_scope_coverage(granted: list[str], scope: str, covered: bool) -> None:
    assert covers(granted, scope) is covered


# --- rate limits ----------------------------------------------------------------------------

RATE = """
# rate.yaml
version: 1
applies_to: {agents: [reply]}
rate_limits:
  - {action: send_email, limit: 10, per: 1m}
  - {action: "*", limit: 100, per: 1h}
"""
EMAILS = Window("send_email", 60.0)
ALL = Window("*", 3600.0)


def test_the_engine_asks_for_the_windows_of_the_matching_limits() -> None:
    rules = policies(RATE)

    assert rules.windows(propose()) == (ALL, EMAILS)
    assert rules.windows(propose("search_kb")) == (ALL,)
    assert rules.windows(propose(agent="other")) == ()


@pytest.mark.parametrize(("count", "outcome"), [(0, "allow"), (9, "allow"), (10, "deny")])
def test_a_rate_limit_allows_up_to_its_limit_within_the_window(count: int, outcome: str) -> None:
    decision = decide(policies(RATE), propose(), recent={EMAILS: count, ALL: count})

    assert decision.outcome == outcome


def test_a_full_window_denies_naming_the_limit() -> None:
    decision = decide(policies(RATE), propose(), recent={EMAILS: 10})

    assert decision.cause == "rate_limit"
    assert decision.rule is not None
    assert decision.rule.path == "rate_limits[0]"
    assert decision.reason == (
        "agent 'reply' may take 'send_email' at most 10 times per 1m "
        "(policy 'rate' v1 rate_limits[0] (rate.yaml:6)); it took 10 in the last 1m"
    )


def test_a_limit_on_every_action_counts_all_of_them() -> None:
    decision = decide(policies(RATE), propose("search_kb"), recent={ALL: 100})

    assert decision.cause == "rate_limit"
    assert decision.rule is not None
    assert decision.rule.path == "rate_limits[1]"
    assert "may take actions at most 100 times per 1h" in decision.reason


def test_rate_limits_of_every_layer_apply() -> None:
    tighter = """
# everyone.yaml
version: 1
applies_to: "*"
rate_limits: [{action: send_email, limit: 3, per: 1m}]
"""
    decision = decide(policies(RATE, tighter), propose(), recent={EMAILS: 3})

    assert decision.cause == "rate_limit"
    assert decision.rule is not None
    assert decision.rule.policy == "everyone"


def test_a_limit_of_zero_never_allows() -> None:
    never = """
# never.yaml
version: 1
applies_to: "*"
rate_limits: [{action: send_email, limit: 0, per: 1s}]
"""
    assert decide(policies(never), propose()).cause == "rate_limit"


def test_a_context_without_a_needed_count_is_a_programming_error() -> None:
    rules = policies(RATE)

    with pytest.raises(KeyError, match=r"Policies\.windows"):
        rules.check(propose(), Context(NOW))


@given(count=st.integers(0, 1000), limit=st.integers(0, 1000))
def test_a_rate_limit_allows_exactly_when_the_count_is_below_it(count: int, limit: int) -> None:
    document = f"""
# r.yaml
version: 1
applies_to: "*"
rate_limits: [{{action: send_email, limit: {limit}, per: 10s}}]
"""
    decision = decide(policies(document), propose(), recent={Window("send_email", 10.0): count})

    assert decision.allowed is (count < limit)


def test_window_edges_an_action_exactly_one_window_old_no_longer_counts() -> None:
    minute = 60.0
    times = [
        NOW - timedelta(seconds=60),  # the window's open end: out
        NOW - timedelta(seconds=59, microseconds=999999),  # in
        NOW,  # in
        NOW + timedelta(microseconds=1),  # the future (another clock): out
    ]

    assert window_start(NOW, minute) == NOW - timedelta(minutes=1)
    assert count_in_window(times, NOW, minute) == 2


# --- budgets --------------------------------------------------------------------------------

BUDGET = """
# budget.yaml
version: 2
applies_to: {agents: [reply]}
budgets:
  per_day: {tokens: 1000, cost_usd: 10}
  per_workflow: {cost_usd: 1}
"""


def test_below_the_warning_level_a_budget_says_nothing() -> None:
    decision = decide(policies(BUDGET), propose(estimate=Spend(tokens=100)), today=Spend(699))

    assert decision.outcome == "allow"
    assert decision.notices == ()


def test_reaching_80_percent_raises_a_warning_crossed_by_this_action() -> None:
    decision = decide(policies(BUDGET), propose(estimate=Spend(tokens=100)), today=Spend(700))

    assert decision.outcome == "allow"
    (notice,) = decision.notices
    assert (notice.level, notice.period, notice.resource) == ("warning", "day", "tokens")
    assert (notice.limit, notice.spent, notice.projected, notice.crossed) == (
        1000,
        700,
        800,
        True,
    )
    assert notice.rule.path == "budgets.per_day.tokens"


def test_past_the_warning_level_the_warning_is_not_crossed_again() -> None:
    decision = decide(policies(BUDGET), propose(estimate=Spend(tokens=10)), today=Spend(800))

    (notice,) = decision.notices
    assert notice.level == "warning"
    assert notice.crossed is False


def test_spending_exactly_the_whole_budget_is_allowed_and_exhausts_it() -> None:
    decision = decide(policies(BUDGET), propose(estimate=Spend(tokens=100)), today=Spend(900))

    assert decision.outcome == "allow"
    assert [(n.level, n.crossed) for n in decision.notices] == [
        ("warning", False),
        ("exhausted", True),
    ]


def test_an_action_that_would_overspend_is_stopped() -> None:
    decision = decide(policies(BUDGET), propose(estimate=Spend(tokens=101)), today=Spend(900))

    assert decision.outcome == "deny"
    assert decision.cause == "budget"
    assert decision.rule is not None
    assert decision.rule.path == "budgets.per_day.tokens"
    assert decision.reason == (
        "'send_email' would overspend the daily token budget of agent 'reply': 900 tokens "
        "spent + 101 tokens estimated > 1,000 tokens (policy 'budget' v2 "
        "budgets.per_day.tokens (budget.yaml:6))"
    )
    # Nothing is spent by a refused action, so no level is crossed.
    assert all(not notice.crossed for notice in decision.notices)


def test_once_spent_a_budget_stops_even_actions_that_estimate_nothing() -> None:
    decision = decide(policies(BUDGET), propose(), today=Spend(1000))

    assert decision.cause == "budget"
    assert decision.reason.startswith(
        "agent 'reply' has used up its daily token budget: 1,000 tokens of 1,000 tokens"
    )


def test_a_workflow_budget_counts_the_spend_in_that_workflow_only() -> None:
    rules = policies(BUDGET)
    proposal = propose(workflow_id="wf-1", estimate=Spend(cost_usd=0.25))

    allowed = decide(rules, proposal, workflow=Spend(cost_usd=0.75))
    stopped = decide(rules, proposal, workflow=Spend(cost_usd=0.80))
    outside = decide(rules, propose(estimate=Spend(cost_usd=0.25)), workflow=Spend(cost_usd=5))

    assert allowed.outcome == "allow"
    assert stopped.cause == "budget"
    assert stopped.rule is not None
    assert stopped.rule.path == "budgets.per_workflow.cost_usd"
    assert "$0.80 spent + $0.25 estimated > $1.00" in stopped.reason
    assert outside.outcome == "allow"  # no workflow: only daily budgets apply


def test_money_budgets_warn_and_stop_like_token_budgets() -> None:
    rules = policies(BUDGET)

    warned = decide(rules, propose(estimate=Spend(cost_usd=0.5)), today=Spend(cost_usd=7.5))
    stopped = decide(rules, propose(estimate=Spend(cost_usd=0.5)), today=Spend(cost_usd=9.6))

    assert [(n.level, n.resource, n.crossed) for n in warned.notices] == [
        ("warning", "cost_usd", True)
    ]
    assert stopped.cause == "budget"
    assert stopped.rule is not None
    assert stopped.rule.path == "budgets.per_day.cost_usd"


def test_the_warning_level_can_be_set_per_policy() -> None:
    document = """
# half.yaml
version: 1
applies_to: "*"
budgets: {per_day: {tokens: 100}, warn_at: 0.5}
"""
    decision = decide(policies(document), propose(estimate=Spend(tokens=50)))

    assert [(n.level, n.crossed) for n in decision.notices] == [("warning", True)]


def test_a_budget_of_zero_allows_nothing() -> None:
    document = """
# zero.yaml
version: 1
applies_to: "*"
budgets: {per_day: {cost_usd: 0}}
"""
    assert decide(policies(document), propose()).cause == "budget"


def test_budgets_of_every_layer_apply_and_the_most_specific_stop_is_reported() -> None:
    everyone = """
# everyone.yaml
version: 1
applies_to: "*"
budgets: {per_day: {tokens: 500}}
"""
    rules = policies(everyone, BUDGET)

    decision = decide(rules, propose(estimate=Spend(tokens=50)), today=Spend(480))
    both = decide(rules, propose(estimate=Spend(tokens=50)), today=Spend(990))

    assert decision.rule is not None
    assert decision.rule.policy == "everyone"
    assert both.rule is not None
    assert both.rule.policy == "budget"


def test_spend_recorded_after_the_fact_reports_the_levels_it_crossed() -> None:
    rules = policies(BUDGET)

    notices = usage_notices(
        rules.policies,
        agent="reply",
        capability="support",
        workflow_id="wf-1",
        today=(Spend(500, 1.0), Spend(1200, 1.5)),
        workflow=(Spend(0, 0.5), Spend(0, 0.85)),
    )

    assert [(n.level, n.period, n.resource, n.crossed) for n in notices] == [
        ("warning", "day", "tokens", True),
        ("exhausted", "day", "tokens", True),
        ("warning", "workflow", "cost_usd", True),
    ]


# --- approvals ------------------------------------------------------------------------------

APPROVAL = """
# approval.yaml
version: 1
applies_to: {agents: [reply]}
require_approval:
  - refund
  - {action: send_email, reason: customers see this}
rate_limits: [{action: refund, limit: 1, per: 1h}]
"""


def test_an_action_needing_approval_waits_for_a_human() -> None:
    decision = decide(policies(APPROVAL), propose())

    assert decision.outcome == "require_approval"
    assert decision.cause == "approval"
    assert decision.rule is not None
    assert decision.rule.path == "require_approval[1]"
    assert decision.reason.endswith(": customers see this")


def test_an_approved_action_is_allowed_and_names_the_approver() -> None:
    decision = decide(policies(APPROVAL), propose(approved_by="alice"))

    assert decision.outcome == "allow"
    assert decision.cause == "approved"
    assert "approved by alice" in decision.reason


def test_a_deny_or_a_full_window_beats_an_approval_rule() -> None:
    rules = policies(APPROVAL, GLOBAL_DENY)
    deny_all = """
# deny.yaml
version: 1
applies_to: "*"
actions: {deny: [send_email]}
"""

    assert decide(policies(APPROVAL, deny_all), propose()).cause == "denied"
    assert (
        decide(rules, propose("refund"), recent={Window("refund", 3600.0): 1}).cause == "rate_limit"
    )
    # Approval does not lift a deny either.
    assert decide(policies(APPROVAL, deny_all), propose(approved_by="bob")).cause == "denied"


# --- the decision record --------------------------------------------------------------------


def test_the_context_digest_changes_with_anything_the_decision_used() -> None:
    proposal = propose(estimate=Spend(tokens=5))
    context = Context(NOW, {EMAILS: 1}, Spend(10), Spend())

    same = context_digest(proposal, Context(NOW, {EMAILS: 1}, Spend(10), Spend()))

    assert context_digest(proposal, context) == same
    assert len(same) == 64
    assert context_digest(proposal, Context(NOW, {EMAILS: 2}, Spend(10), Spend())) != same
    assert context_digest(propose(estimate=Spend(tokens=6)), context) != same
    assert decide(policies(RATE), proposal).context_digest != ""


def test_parameters_are_identified_by_the_digest_of_their_canonical_json() -> None:
    digest, size = digest_params({"to": "sam@example.com", "subject": "Hi"})

    assert (digest, size) == digest_params({"subject": "Hi", "to": "sam@example.com"})
    assert size == len('{"subject":"Hi","to":"sam@example.com"}')
    assert digest != digest_params({"subject": "Hi!", "to": "sam@example.com"})[0]


def test_the_daily_period_is_the_utc_date() -> None:
    late_in_new_york = datetime(2030, 1, 1, 20, 0, tzinfo=timezone(timedelta(hours=-5)))

    assert utc_day(late_in_new_york) == "2030-01-02"
    assert utc_day(datetime(2030, 1, 1, 23, 59)) == "2030-01-01"  # naive: taken as UTC


def test_refusals_map_to_exceptions_a_handler_can_let_through() -> None:
    forbidden = refusal(decide(policies(REPLY), propose("wire")))
    limited = refusal(decide(policies(RATE), propose(), recent={EMAILS: 10}))
    stopped = refusal(decide(policies(BUDGET), propose(), today=Spend(1000)))
    approval = refusal(decide(policies(APPROVAL), propose()))

    assert isinstance(forbidden, ActionForbidden)
    assert isinstance(forbidden, NonRetryableError)
    assert isinstance(stopped, BudgetStopped)
    assert isinstance(stopped, NonRetryableError)
    assert isinstance(limited, RateLimited)
    assert not isinstance(limited, NonRetryableError)  # a later attempt may pass
    assert isinstance(approval, ApprovalRequired)
    assert str(approval).endswith("customers see this")
    assert approval.decision.outcome == "require_approval"
    with pytest.raises(ValueError, match="not refused"):
        refusal(decide(policies(REPLY), propose()))
