"""Risk levels in policies: how they load (with errors naming the line), the level an
action gets across layers, a critical action that always waits for a person, four eyes
from a level up, and the level carried in the decision, its event, its audit row and the
approval request an agent sends. Pure, except the one audit test on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from waypost.events import AgentInfo, ErrorInfo, Event, TaskFailed, default_codec
from waypost.governance import (
    ApprovalRequired,
    Context,
    Gate,
    Policies,
    PolicyDecision,
    PolicyError,
    Proposal,
    load_text,
    refusal,
    repository,
)
from waypost.governance.events import decided
from waypost.governance.risk import assess
from waypost.runtime.results import _approval_request

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

REFUNDS = """\
# refunds.yaml
version: 2
applies_to: {agents: [refunds]}
actions:
  allow: [refund, wire_money, send_email, close_account]
  deny: [drop_table]
require_approval:
  - {action: refund, reason: refunds move money}
risk:
  refund: high
  wire_money: critical
  drop_table: critical
  "*": low
"""
BASELINE = """\
# baseline.yaml
version: 1
applies_to: "*"
risk:
  close_account: medium
  send_email: medium
four_eyes_from: high
"""


def policies(*documents: str) -> Policies:
    """Policies from YAML texts; each text's first line is a comment naming its file."""
    loaded = []
    for document in documents:
        source = document.splitlines()[0].removeprefix("#").strip()
        loaded.append(load_text(document, source=source, default_name=source.split(".")[0]))
    return Policies(tuple(loaded))


def decide(rules: Policies, action: str, approved_by: str | None = None) -> PolicyDecision:
    proposal = Proposal(
        agent="refunds", capability="refunds", action=action, approved_by=approved_by
    )
    return rules.check(proposal, Context(NOW, {w: 0 for w in rules.windows(proposal)}))


# --- loading ----------------------------------------------------------------------------------


def test_a_policy_gives_actions_levels_and_a_four_eyes_threshold() -> None:
    (refunds, baseline) = policies(REFUNDS, BASELINE).policies

    assert refunds.risk == {
        "refund": "high",
        "wire_money": "critical",
        "drop_table": "critical",
        "*": "low",
    }
    assert refunds.four_eyes_from is None
    assert baseline.four_eyes_from == "high"
    assert refunds.risk_of("refund") == ("high", "risk.refund")
    assert refunds.risk_of("anything") == ("low", "risk.*")
    assert baseline.risk_of("refund") is None
    assert refunds.ref("risk.wire_money").line == 11


def test_a_policy_without_risk_gives_no_level() -> None:
    (policy,) = policies("# plain.yaml\nversion: 1\napplies_to: '*'\n").policies

    assert (policy.risk, policy.four_eyes_from, policy.risk_of("refund")) == ({}, None, None)


def test_an_unknown_level_or_action_is_refused_naming_the_line() -> None:
    text = (
        "version: 1\napplies_to: '*'\nrisk:\n  refund: extreme\n  Wire Money: high\n"
        "four_eyes_from: always\n"
    )

    with pytest.raises(PolicyError) as caught:
        load_text(text, source="policies/bad.yaml")

    assert [str(p) for p in caught.value.problems] == [
        'risk.refund (line 4): "extreme" is not a risk level: use low, medium, high or critical',
        'risk (line 5): "Wire Money" is not an action name: use lower-case letters, digits, '
        "'.', '_', '-', ':' or '/', starting with a letter (a tool call is mcp:SERVER/TOOL), "
        'or "*" for every action',
        'four_eyes_from (line 6): "always" is not a risk level: use low, medium, high or critical',
    ]


def test_an_empty_risk_mapping_is_refused() -> None:
    with pytest.raises(PolicyError, match="risk"):
        load_text("version: 1\napplies_to: '*'\nrisk: {}\n")


# --- the level of an action ---------------------------------------------------------------


def test_an_action_gets_the_highest_level_any_applicable_policy_gives_it() -> None:
    rules = policies(REFUNDS, BASELINE)
    ordered = rules.applicable("refunds", "refunds")

    # The refunds policy's "*" says low, the baseline says medium: the higher wins.
    assert assess(ordered, "send_email").level == "medium"
    assert str(assess(ordered, "send_email").rule).startswith("policy 'baseline' v1 risk.send_")
    assert assess(ordered, "refund").level == "high"
    assert assess(ordered, "search_kb").level == "low"
    assert assess([], "refund").level == "low"
    assert assess([], "refund").rule is None


def test_every_decision_carries_the_level() -> None:
    rules = policies(REFUNDS, BASELINE)

    assert decide(rules, "send_email").risk == "medium"
    assert decide(rules, "drop_table").risk == "critical"  # denied, with its level
    assert decide(policies(), "refund").risk == "low"  # no policy at all


# --- critical actions ---------------------------------------------------------------------


def test_a_critical_action_waits_for_a_person_although_the_allow_list_allows_it() -> None:
    rules = policies(REFUNDS)

    decision = decide(rules, "wire_money")

    assert (decision.outcome, decision.cause, decision.risk) == (
        "require_approval",
        "approval",
        "critical",
    )
    assert decision.rule is not None
    assert decision.rule.path == "risk.wire_money"
    assert decision.reason == (
        "'wire_money' is critical under policy 'refunds' v2 risk.wire_money (refunds.yaml:11): "
        "a person must approve it"
    )
    assert isinstance(refusal(decision), ApprovalRequired)


def test_a_critical_action_with_a_persons_approval_is_allowed() -> None:
    decision = decide(policies(REFUNDS), "wire_money", approved_by="ann")

    assert (decision.outcome, decision.cause) == ("allow", "approved")
    assert "approved by ann" in decision.reason


def test_a_deny_still_wins_over_a_critical_level() -> None:
    decision = decide(policies(REFUNDS), "drop_table", approved_by="ann")

    assert (decision.outcome, decision.cause) == ("deny", "denied")


def test_a_critical_level_for_every_action_holds_them_all() -> None:
    rules = policies("# strict.yaml\nversion: 1\napplies_to: '*'\nrisk: {'*': critical}\n")

    assert decide(rules, "search_kb").outcome == "require_approval"


# --- four eyes ------------------------------------------------------------------------------


def test_from_the_four_eyes_level_up_an_approval_needs_two_reviewers() -> None:
    rules = policies(REFUNDS, BASELINE)

    refund = decide(rules, "refund")
    wire = decide(rules, "wire_money")
    email = decide(rules, "send_email")

    assert (refund.outcome, refund.approvals) == ("require_approval", 2)
    assert refund.reason == (
        "'refund' needs a human's approval under policy 'refunds' v2 require_approval[0] "
        "(refunds.yaml:8): refunds move money; 2 different reviewers must approve it (risk "
        "high, four eyes under policy 'baseline' v1 four_eyes_from (baseline.yaml:7))"
    )
    assert (wire.outcome, wire.approvals) == ("require_approval", 2)
    assert (email.outcome, email.approvals) == ("allow", 1)  # medium: below the threshold


def test_without_four_eyes_one_reviewer_approves() -> None:
    decision = decide(policies(REFUNDS), "refund")

    assert (decision.outcome, decision.approvals) == ("require_approval", 1)
    assert decision.reason.endswith("refunds move money")


# --- where the level goes -----------------------------------------------------------------


def test_the_decided_event_and_the_approval_request_carry_level_and_reviewers() -> None:
    rules = policies(REFUNDS, BASELINE)
    proposal = Proposal(
        agent="refunds", capability="refunds", action="refund", params_digest="ab" * 32
    )
    decision = rules.check(proposal, Context(NOW))

    event = decided(proposal, decision)
    request = _approval_request(ApprovalRequired(decision, proposal))

    assert (event.risk, event.approvals) == ("high", 2)
    assert request is not None
    assert (request.risk, request.approvals) == ("high", 2)
    codec = default_codec()  # both pass their JSON Schemas
    for payload in (
        event,
        TaskFailed(
            workflow_id="w",
            task_id="t",
            step="refund",
            capability="refunds",
            attempt=1,
            error=ErrorInfo(type="ApprovalRequired", message="wait", retryable=False),
            agent=AgentInfo(capability="refunds", version="1", instance="i"),
            approval=request,
        ),
    ):
        encoded = codec.encode(Event(payload, source="tests"))
        assert codec.decode(encoded.value, encoded.headers).payload == payload


@pytest.mark.integration
def test_the_audit_row_records_the_level_and_reviewers(engine: Engine) -> None:
    gate = Gate(engine, policies(REFUNDS, BASELINE), clock=lambda: NOW)

    decision = gate.decide(
        Proposal(agent="refunds", capability="refunds", action="refund", workflow_id="w1")
    )

    with engine.connect() as connection:
        (row,) = repository.decisions(connection=connection, workflow_id="w1")
    assert row.id == decision.audit_id
    assert (row.outcome, row.detail["risk"], row.detail["approvals"]) == (
        "require_approval",
        "high",
        2,
    )
