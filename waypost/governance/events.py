"""Governance events for the ``<namespace>.governance`` topic, keyed by agent.

- ``policy.decided`` (``PolicyDecided``): every decision, whatever its outcome.
- ``budget.threshold_reached`` (``BudgetThresholdReached``): spend crossed a budget's
  warning level (``warn_at``, 80% by default).
- ``budget.exhausted`` (``BudgetExhausted``): spend reached a budget's limit.

A budget event is built only for a notice whose ``crossed`` is true, which happens once
per limit and period because spend only grows and is added under the agent's lock.

The JSON Schemas of these bodies are in ``event_schemas/``, written to move unchanged
into ``schemas/`` when the types join the event registry (``PAYLOAD_TYPES``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from waypost.events.payloads import Payload
from waypost.governance.engine import utc_day
from waypost.governance.model import BudgetNotice, PolicyDecision, Proposal, RuleRef


class RuleInfo(BaseModel):
    """The rule that decided: policy name, file, version and digest, rule path and line."""

    model_config = ConfigDict(frozen=True)
    policy: str
    file: str
    version: int = Field(ge=1)
    digest: str
    path: str = ""
    line: int | None = None

    @classmethod
    def of(cls, ref: RuleRef) -> RuleInfo:
        """From the engine's reference."""
        return cls(
            policy=ref.policy,
            file=ref.file,
            version=ref.version,
            digest=ref.digest,
            path=ref.path,
            line=ref.line,
        )


class NoticeInfo(BaseModel):
    """A budget at or past a level, as carried by ``policy.decided``."""

    model_config = ConfigDict(frozen=True)
    level: Literal["warning", "exhausted"]
    period: Literal["day", "workflow"]
    resource: Literal["tokens", "cost_usd"]
    limit: float = Field(ge=0)
    spent: float
    projected: float
    rule: RuleInfo


class _GovernanceEvent(Payload):
    agent: str
    capability: str
    workflow_id: str | None = None
    task_id: str | None = None
    at: str

    def partition_key(self) -> str | None:
        """One agent's governance events stay in order."""
        return self.agent


class PolicyDecided(_GovernanceEvent):
    """A policy decision on an action an agent proposed."""

    TYPE = "policy.decided"
    action: str
    outcome: Literal["allow", "deny", "require_approval"]
    cause: str
    reason: str
    rule: RuleInfo | None = None
    context_digest: str
    audit_id: int | None = None
    notices: list[NoticeInfo] = Field(default_factory=list)


class _BudgetLevel(_GovernanceEvent):
    period: Literal["day", "workflow"]
    period_key: str  # the UTC date, or the workflow id
    resource: Literal["tokens", "cost_usd"]
    limit: float = Field(ge=0)
    spent: float  # before the spend that crossed the level
    projected: float  # after it
    rule: RuleInfo


class BudgetThresholdReached(_BudgetLevel):
    """An agent's spend crossed a budget's warning level."""

    TYPE = "budget.threshold_reached"


class BudgetExhausted(_BudgetLevel):
    """An agent's spend reached a budget's limit: further actions are refused."""

    TYPE = "budget.exhausted"


GOVERNANCE_PAYLOAD_TYPES: dict[str, type[Payload]] = {
    cls.TYPE: cls for cls in (PolicyDecided, BudgetThresholdReached, BudgetExhausted)
}
"""What ``PAYLOAD_TYPES`` in ``waypost.events.payloads`` needs to gain."""


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
        rule=RuleInfo.of(decision.rule) if decision.rule is not None else None,
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
                rule=RuleInfo.of(n.rule),
            )
            for n in decision.notices
        ],
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
                rule=RuleInfo.of(notice.rule),
            )
        )
    return events


def _timestamp(at: datetime) -> str:
    return at.isoformat()
