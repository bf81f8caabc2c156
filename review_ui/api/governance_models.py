"""The public shapes of the governance API: policy decisions with the rule that decided,
spend against budgets, and audit log entries (one model per direction, read only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.store.audit_log import AuditRecord
from waypost.governance.budgets import AgentBudget, BudgetLine
from waypost.governance.repository import AuditedDecision


class RulePublic(BaseModel):
    """Which rule of which policy version decided: enough to find and reproduce it."""

    policy: str
    version: int | None
    digest: str | None
    path: str | None = Field(description="The rule inside the policy, e.g. actions.deny[1].")
    file: str | None
    line: int | None = Field(description="The rule's line in the file, when known.")


class PolicyDecisionPublic(BaseModel):
    """One policy decision: who wanted to do what, what the policies said, and why."""

    id: int
    at: datetime
    agent: str
    capability: str
    workflow_id: str | None
    task_id: str | None
    action: str
    outcome: Literal["allow", "deny", "require_approval"]
    cause: str = Field(description="Which check decided: no_policy, allowed, denied, budget, ...")
    reason: str
    rule: RulePublic | None = Field(description="null when no policy applied.")
    risk: str | None = Field(description="The action's risk level, when the policies gave one.")
    detail: dict[str, Any] = Field(
        description="Parameters digest and size, scopes, estimate, approver, the counts, "
        "the spend and the budget notices at the time."
    )

    @classmethod
    def of(cls, row: AuditedDecision) -> PolicyDecisionPublic:
        """The public form of an audited decision."""
        rule = (
            RulePublic(
                policy=row.policy,
                version=row.policy_version,
                digest=row.policy_digest,
                path=row.rule,
                file=row.policy_file,
                line=row.detail.get("rule_line"),
            )
            if row.policy is not None
            else None
        )
        risk = row.detail.get("risk")
        return cls(
            id=row.id,
            at=row.at,
            agent=row.agent,
            capability=row.capability,
            workflow_id=row.workflow_id,
            task_id=row.task_id,
            action=row.action,
            outcome=row.outcome,  # type: ignore[arg-type]  # the table's CHECK keeps it to these
            cause=row.cause,
            reason=row.reason,
            rule=rule,
            risk=risk if isinstance(risk, str) else None,
            detail=row.detail,
        )


class PolicyDecisionPagePublic(BaseModel):
    """A page of decisions, newest first."""

    items: list[PolicyDecisionPublic]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class BudgetLinePublic(BaseModel):
    """A per-day limit on one resource and how much of it is spent."""

    resource: Literal["tokens", "cost_usd"]
    limit: float
    spent: float
    share: float | None = Field(description="spent / limit (1 and more: exhausted); null for 0.")
    level: Literal["ok", "warning", "exhausted"]
    rule: RulePublic

    @classmethod
    def of(cls, line: BudgetLine) -> BudgetLinePublic:
        """The public form of a budget line."""
        ref = line.rule
        return cls(
            resource=line.resource,
            limit=line.limit,
            spent=line.spent,
            share=line.share,
            level=line.level,  # type: ignore[arg-type]  # one of the three by construction
            rule=RulePublic(
                policy=ref.policy,
                version=ref.version,
                digest=ref.digest,
                path=ref.path,
                file=ref.file,
                line=ref.line,
            ),
        )


class AgentBudgetPublic(BaseModel):
    """An agent's spend on the day and the per-day limits on it."""

    agent: str
    tokens: int
    cost_usd: float
    limits: list[BudgetLinePublic] = Field(
        description="Every per-day limit of the policies that govern the agent, tightest "
        "first; empty when none does or the limits are unknown (see limits_known)."
    )

    @classmethod
    def of(cls, budget: AgentBudget) -> AgentBudgetPublic:
        """The public form of an agent's budget."""
        return cls(
            agent=budget.agent,
            tokens=budget.spent.tokens,
            cost_usd=budget.spent.cost_usd,
            limits=[BudgetLinePublic.of(line) for line in budget.lines],
        )


class BudgetsPublic(BaseModel):
    """Every agent's spend on a UTC day, against its limits."""

    day: str = Field(description="The UTC day, YYYY-MM-DD.")
    limits_known: bool = Field(description="False when this app reads no policy files.")
    limits_source: str = Field(description="Where the limits come from, or where they are.")
    items: list[AgentBudgetPublic]


class AuditEventPublic(BaseModel):
    """One entry of the audit log: who (a person, or `waypost:...` for the system) did
    what, to which workflow or escalation, and when."""

    id: int
    at: datetime
    actor: str
    action: str
    workflow_id: str | None
    escalation_id: str | None
    version: int | None = Field(description="The escalation version a decision was bound to.")
    digest: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, record: AuditRecord) -> AuditEventPublic:
        """The public form of an audit record."""
        return cls(
            id=record.id,
            at=record.at,
            actor=record.actor,
            action=record.action,
            workflow_id=record.workflow_id,
            escalation_id=record.escalation_id,
            version=record.version,
            digest=record.digest,
            detail=dict(record.detail),
        )


class AuditPagePublic(BaseModel):
    """A page of the audit log, newest first."""

    items: list[AuditEventPublic]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )
