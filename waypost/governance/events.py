"""Governance events for the ``<namespace>.governance`` topic, keyed by agent.

- ``policy.decided`` (``PolicyDecided``): every decision, whatever its outcome.
- ``budget.threshold_reached`` (``BudgetThresholdReached``): spend crossed a budget's
  warning level (``warn_at``, 80% by default).
- ``budget.exhausted`` (``BudgetExhausted``): spend reached a budget's limit.

A budget event is built only for a notice whose ``crossed`` is true, which happens once
per limit and period because spend only grows and is added under the agent's lock.

The bodies are event types of the registry (``waypost.events.payloads``, JSON Schemas in
``schemas/``); they are re-exported here with the functions that build them from
decisions.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from waypost.events.payloads import (
    BudgetExhausted,
    BudgetThresholdReached,
    NoticeInfo,
    Payload,
    PolicyDecided,
    RuleInfo,
)
from waypost.governance.engine import utc_day
from waypost.governance.model import BudgetNotice, PolicyDecision, Proposal, RuleRef

GOVERNANCE_PAYLOAD_TYPES: dict[str, type[Payload]] = {
    cls.TYPE: cls for cls in (PolicyDecided, BudgetThresholdReached, BudgetExhausted)
}
"""The event types of the governance topic."""

__all__ = [
    "GOVERNANCE_PAYLOAD_TYPES",
    "BudgetExhausted",
    "BudgetThresholdReached",
    "NoticeInfo",
    "PolicyDecided",
    "RuleInfo",
    "budget_events",
    "decided",
    "rule_info",
]


def rule_info(ref: RuleRef) -> RuleInfo:
    """The event form of the engine's rule reference."""
    return RuleInfo(
        policy=ref.policy,
        file=ref.file,
        version=ref.version,
        digest=ref.digest,
        path=ref.path,
        line=ref.line,
    )


def decided(proposal: Proposal, decision: PolicyDecision) -> PolicyDecided:
    """The ``policy.decided`` event of a decision."""
    return PolicyDecided(
        agent=proposal.agent,
        capability=proposal.capability,
        workflow_id=proposal.workflow_id,
        task_id=proposal.task_id,
        at=_timestamp(decision.at),
        action=proposal.action,
        outcome=decision.outcome,
        cause=decision.cause,
        reason=decision.reason,
        rule=rule_info(decision.rule) if decision.rule is not None else None,
        context_digest=decision.context_digest,
        audit_id=decision.audit_id,
        notices=[
            NoticeInfo(
                level=n.level,
                period=n.period,
                resource=n.resource,
                limit=n.limit,
                spent=n.spent,
                projected=n.projected,
                rule=rule_info(n.rule),
            )
            for n in decision.notices
        ],
        risk=decision.risk,
        approvals=decision.approvals,
    )


def budget_events(
    notices: Iterable[BudgetNotice],
    *,
    agent: str,
    capability: str,
    workflow_id: str | None,
    task_id: str | None,
    at: datetime,
) -> list[BudgetThresholdReached | BudgetExhausted]:
    """One event per notice that crossed its level (the others were reported before)."""
    events: list[BudgetThresholdReached | BudgetExhausted] = []
    for notice in notices:
        if not notice.crossed:
            continue
        kind = BudgetThresholdReached if notice.level == "warning" else BudgetExhausted
        period_key = workflow_id if notice.period == "workflow" and workflow_id else utc_day(at)
        events.append(
            kind(
                agent=agent,
                capability=capability,
                workflow_id=workflow_id,
                task_id=task_id,
                at=_timestamp(at),
                period=notice.period,
                period_key=period_key,
                resource=notice.resource,
                limit=notice.limit,
                spent=notice.spent,
                projected=notice.projected,
                rule=rule_info(notice.rule),
            )
        )
    return events


def _timestamp(at: datetime) -> str:
    return at.isoformat()
