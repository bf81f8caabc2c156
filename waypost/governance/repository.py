"""All SQL of governance, as keyword-only functions taking the connection.

A governed action is decided in one transaction (see ``gate.Gate``):

1. ``lock_agent``: a transaction-level advisory lock per agent (and schema), so the
   decisions of one agent's workers happen one after another;
2. ``read_context``: one statement counting the agent's actions per rate window and
   reading its spend today and in the workflow; it runs after the lock was granted, so
   (in READ COMMITTED) it sees everything the previous holder committed;
3. ``record``: one statement writing the audit row and, for an allowed action, its
   ``agent_actions`` row and its estimated spend.

The lock is an advisory lock rather than a row lock because it must exist before the
agent's first row does and must not depend on the day (two workers either side of
midnight would lock different day rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, literal, select, text, true
from sqlalchemy.dialects.postgresql import insert as pg_insert

from waypost.governance.engine import window_start
from waypost.governance.model import (
    ANY,
    Context,
    PolicyDecision,
    Proposal,
    Spend,
    SpendChange,
    Window,
)
from waypost.governance.tables import agent_actions, agent_spend, policy_decisions

_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtextextended("
    "'waypost:governance:' || current_schema() || ':' || :agent, 0)), clock_timestamp() AS now"
)


def lock_agent(*, connection: Connection, agent: str) -> datetime:
    """Serialise governed actions of ``agent`` until the transaction ends; the database's
    time once the lock is granted."""
    now: datetime = connection.execute(_LOCK, {"agent": agent}).one().now
    return now


def database_now(*, connection: Connection) -> datetime:
    """The database's clock."""
    current: datetime = connection.execute(select(func.clock_timestamp())).scalar_one()
    return current


def read_context(
    *,
    connection: Connection,
    proposal: Proposal,
    windows: Sequence[Window],
    now: datetime,
    day: str,
) -> Context:
    """The agent's action counts per window and its spend so far, in one statement."""
    a, s = agent_actions.c, agent_spend.c
    columns: list[Any] = [
        func.count()
        .filter(
            and_(
                a.at > window_start(now, window.seconds),
                a.action == window.action if window.action != ANY else true(),
            )
        )
        .label(f"c{i}")
        for i, window in enumerate(windows)
    ]
    for kind, period in (("day", day), ("workflow", proposal.workflow_id)):
        for resource in ("tokens", "cost_usd"):
            found = (
                select(s[resource])
                .where(s.agent == proposal.agent, s.period_kind == kind, s.period == period)
                .scalar_subquery()
            )
            columns.append(func.coalesce(found, 0).label(f"{kind}_{resource}"))
    query = select(*columns)
    if windows:
        oldest = min(window_start(now, window.seconds) for window in windows)
        query = query.select_from(agent_actions).where(
            a.agent == proposal.agent, a.at > oldest, a.at <= now
        )
    row = connection.execute(query).one()
    return Context(
        now=now,
        recent={window: row[i] for i, window in enumerate(windows)},
        spent_today=Spend(int(row.day_tokens), float(row.day_cost_usd)),
        spent_in_workflow=Spend(int(row.workflow_tokens), float(row.workflow_cost_usd)),
    )


def record(
    *,
    connection: Connection,
    proposal: Proposal,
    context: Context,
    decision: PolicyDecision,
    day: str,
) -> int:
    """Write the audit row of ``decision`` and, if it allows the action, the action and its
    estimated spend; one statement. Returns the audit row's id."""
    audit = (
        insert(policy_decisions)
        .values(_audit_row(proposal, context, decision))
        .returning(policy_decisions.c.id)
        .cte("audit")
    )
    statement = select(audit.c.id)
    if decision.allowed:
        action = insert(agent_actions).from_select(
            ["agent", "capability", "action", "at", "workflow_id", "task_id", "decision_id"],
            select(
                literal(proposal.agent),
                literal(proposal.capability),
                literal(proposal.action),
                literal(decision.at),
                literal(proposal.workflow_id),
                literal(proposal.task_id),
                audit.c.id,
            ),
        )
        statement = statement.add_cte(action.cte("action"))
        if proposal.estimate != Spend():
            spend = _add_spend(
                proposal.agent, day, proposal.workflow_id, proposal.estimate, decision.at
            )
            statement = statement.add_cte(spend.cte("spend"))
    audit_id: int = connection.execute(statement).scalar_one()
    return audit_id


def add_spend(
    *,
    connection: Connection,
    agent: str,
    day: str,
    workflow_id: str | None,
    spend: Spend,
    now: datetime,
) -> SpendChange:
    """Add ``spend`` to the agent's day (and workflow) totals atomically."""
    if spend.tokens < 0 or spend.cost_usd < 0:
        raise ValueError(f"spend cannot be negative: {spend}")
    s = agent_spend.c
    statement = _add_spend(agent, day, workflow_id, spend, now).returning(
        s.period_kind, s.tokens, s.cost_usd
    )
    after = {
        row.period_kind: Spend(int(row.tokens), float(row.cost_usd))
        for row in connection.execute(statement)
    }
    nothing = Spend()
    today = after.get("day", nothing)
    workflow = after.get("workflow", nothing)
    return SpendChange(
        today=(_minus(today, spend), today),
        workflow=(_minus(workflow, spend), workflow)
        if workflow_id is not None
        else (nothing, nothing),
    )


def prune_actions(*, connection: Connection, before: datetime) -> int:
    """Delete recorded actions taken before ``before`` (older than any rate window)."""
    result = connection.execute(delete(agent_actions).where(agent_actions.c.at < before))
    return int(result.rowcount)


@dataclass(frozen=True, slots=True)
class AuditedDecision:
    """One row of ``policy_decisions``."""

    id: int
    at: datetime
    agent: str
    capability: str
    workflow_id: str | None
    task_id: str | None
    action: str
    outcome: str
    cause: str
    policy: str | None
    policy_file: str | None
    policy_version: int | None
    policy_digest: str | None
    rule: str | None
    reason: str
    context_digest: str
    detail: dict[str, Any]


def decisions(
    *,
    connection: Connection,
    agent: str | None = None,
    workflow_id: str | None = None,
    limit: int = 100,
) -> list[AuditedDecision]:
    """The newest audited decisions, optionally of one agent or workflow."""
    d = policy_decisions.c
    query = select(policy_decisions).order_by(d.at.desc(), d.id.desc()).limit(limit)
    if agent is not None:
        query = query.where(d.agent == agent)
    if workflow_id is not None:
        query = query.where(d.workflow_id == workflow_id)
    return [AuditedDecision(**row._asdict()) for row in connection.execute(query)]


def _add_spend(agent: str, day: str, workflow_id: str | None, spend: Spend, now: datetime) -> Any:
    rows = [("day", day)] + ([("workflow", workflow_id)] if workflow_id is not None else [])
    statement = pg_insert(agent_spend).values(
        [
            {
                "agent": agent,
                "period_kind": kind,
                "period": period,
                "tokens": spend.tokens,
                "cost_usd": spend.cost_usd,
                "updated_at": now,
            }
            for kind, period in rows
        ]
    )
    return statement.on_conflict_do_update(
        index_elements=["agent", "period_kind", "period"],
        set_={
            "tokens": agent_spend.c.tokens + statement.excluded.tokens,
            "cost_usd": agent_spend.c.cost_usd + statement.excluded.cost_usd,
            "updated_at": func.greatest(agent_spend.c.updated_at, statement.excluded.updated_at),
        },
    )


def _audit_row(proposal: Proposal, context: Context, decision: PolicyDecision) -> dict[str, Any]:
    rule = decision.rule
    return {
        "at": decision.at,
        "agent": proposal.agent,
        "capability": proposal.capability,
        "workflow_id": proposal.workflow_id,
        "task_id": proposal.task_id,
        "action": proposal.action,
        "outcome": decision.outcome,
        "cause": decision.cause,
        "policy": rule.policy if rule else None,
        "policy_file": rule.file if rule else None,
        "policy_version": rule.version if rule else None,
        "policy_digest": rule.digest if rule else None,
        "rule": rule.path if rule else None,
        "reason": decision.reason,
        "context_digest": decision.context_digest,
        "detail": {
            "params_digest": proposal.params_digest,
            "params_size": proposal.params_size,
            "scopes": sorted(proposal.scopes),
            "estimate": _spend_json(proposal.estimate),
            "approved_by": proposal.approved_by,
            "risk": decision.risk,
            "approvals": decision.approvals,
            "rule_line": rule.line if rule else None,
            "recent": [
                {"action": w.action, "seconds": w.seconds, "count": n}
                for w, n in sorted(
                    context.recent.items(), key=lambda item: (item[0].action, item[0].seconds)
                )
            ],
            "spent_today": _spend_json(context.spent_today),
            "spent_in_workflow": _spend_json(context.spent_in_workflow),
            "notices": [
                {
                    "level": n.level,
                    "period": n.period,
                    "resource": n.resource,
                    "limit": n.limit,
                    "spent": n.spent,
                    "projected": n.projected,
                    "crossed": n.crossed,
                    "rule": n.rule.path,
                    "policy": n.rule.policy,
                }
                for n in decision.notices
            ],
        },
    }


def _spend_json(spend: Spend) -> dict[str, Any]:
    return {"tokens": spend.tokens, "cost_usd": spend.cost_usd}


def _minus(total: Spend, part: Spend) -> Spend:
    return Spend(total.tokens - part.tokens, total.cost_usd - part.cost_usd)
