"""Governance event bodies: the pydantic models match their JSON Schemas in ``schemas/``,
and budget events come only from notices that crossed a level."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jsonschema_rs
import pytest

import schemas
from waypost.events import PAYLOAD_TYPES
from waypost.governance import Context, Policies, Proposal, Spend, load_text
from waypost.governance.events import (
    GOVERNANCE_PAYLOAD_TYPES,
    BudgetExhausted,
    BudgetThresholdReached,
    PolicyDecided,
    budget_events,
    decided,
)

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
RULES = Policies(
    (
        load_text(
            "version: 2\napplies_to: {agents: [reply]}\n"
            "budgets: {per_day: {tokens: 100}, per_workflow: {cost_usd: 1}}\n",
            source="policies/reply.yaml",
            default_name="reply",
        ),
    )
)


def _schema(event_type: str) -> dict[str, Any]:
    return schemas.latest(event_type).document


def _errors(event_type: str, body: dict[str, Any]) -> list[str]:
    registry = jsonschema_rs.Registry(list(schemas.shared_documents().items()))
    validator = jsonschema_rs.validator_for(
        _schema(event_type), registry=registry, validate_formats=True
    )
    return [error.message for error in validator.iter_errors(body)]


def _body(payload: Any) -> dict[str, Any]:
    # As the codec serialises a payload.
    body: dict[str, Any] = payload.model_dump(mode="json", exclude_none=True)
    return body


@pytest.mark.parametrize("event_type", sorted(GOVERNANCE_PAYLOAD_TYPES))
def test_each_event_type_is_in_the_registry(event_type: str) -> None:
    document = _schema(event_type)

    jsonschema_rs.meta.validate(document)
    assert document["$id"] == f"{schemas.BASE_URI}{event_type}.v1.json"
    assert PAYLOAD_TYPES[event_type] is GOVERNANCE_PAYLOAD_TYPES[event_type]


def test_a_decision_becomes_a_policy_decided_body_its_schema_accepts() -> None:
    proposal = Proposal(
        "reply", "reply", "send_email", workflow_id="w1", task_id="t1", estimate=Spend(90)
    )
    decision = RULES.check(proposal, Context(NOW))

    event = decided(proposal, decision)

    assert isinstance(event, PolicyDecided)
    assert event.partition_key() == "reply"
    assert (event.outcome, event.cause) == ("allow", "allowed")
    assert event.rule is not None
    assert (event.rule.policy, event.rule.version, event.rule.file) == (
        "reply",
        2,
        "policies/reply.yaml",
    )
    assert [n.level for n in event.notices] == ["warning"]
    assert _errors("policy.decided", _body(event)) == []


def test_a_decision_without_a_policy_fits_the_schema_too() -> None:
    proposal = Proposal("triage", "triage", "classify")

    body = _body(decided(proposal, RULES.check(proposal, Context(NOW))))

    assert "rule" not in body
    assert _errors("policy.decided", body) == []


def test_the_schema_refuses_a_body_the_model_would_not_produce() -> None:
    assert _errors("policy.decided", {"agent": "reply"}) != []


def test_budget_events_are_built_for_crossed_levels_only() -> None:
    proposal = Proposal(
        "reply", "reply", "search_kb", workflow_id="w1", estimate=Spend(100, cost_usd=0.5)
    )
    decision = RULES.check(proposal, Context(NOW, spent_today=Spend(0)))

    events = budget_events(
        decision.notices,
        agent="reply",
        capability="reply",
        workflow_id="w1",
        task_id="t1",
        at=NOW,
    )

    assert [type(e) for e in events] == [BudgetThresholdReached, BudgetExhausted]
    assert all(e.period == "day" and e.period_key == "2030-01-01" for e in events)
    assert [e.TYPE for e in events] == ["budget.threshold_reached", "budget.exhausted"]
    for event in events:
        assert _errors(event.TYPE, _body(event)) == []
    # A level passed before this spend is not announced again.
    small = Proposal("reply", "reply", "search_kb", estimate=Spend(5))
    later = RULES.check(small, Context(NOW, spent_today=Spend(85)))
    assert [n.level for n in later.notices] == ["warning"]
    assert (
        budget_events(
            later.notices, agent="reply", capability="reply", workflow_id=None, task_id=None, at=NOW
        )
        == []
    )


def test_a_workflow_budget_event_is_keyed_by_the_workflow() -> None:
    proposal = Proposal("reply", "reply", "search_kb", workflow_id="w9", estimate=Spend(0, 0.9))

    (event,) = budget_events(
        RULES.check(proposal, Context(NOW)).notices,
        agent="reply",
        capability="reply",
        workflow_id="w9",
        task_id=None,
        at=NOW,
    )

    assert (event.period, event.period_key, event.resource) == ("workflow", "w9", "cost_usd")
    assert _errors("budget.threshold_reached", _body(event)) == []
