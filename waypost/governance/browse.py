"""Reading the governance audit trail and spend, for people: policy decisions filtered
by agent, action, outcome and time in keyset pages (newest first), and what each agent
spent on a day. All SQL, as keyword-only functions taking the connection.

``policy_decisions_agent_at`` serves a page of one agent; other filters walk the rows
newest first and stop after a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, tuple_

from waypost.governance.model import Outcome, Spend
from waypost.governance.repository import AuditedDecision
from waypost.governance.tables import agent_spend, policy_decisions
from waypost.keyset import Position


@dataclass(frozen=True, slots=True)
class DecisionFilter:
    """Which decisions to show; None: any."""

    agent: str | None = None
    action: str | None = None
    outcome: Outcome | None = None
    since: datetime | None = None  # at or after
    until: datetime | None = None  # before


def find_decisions(
    *,
    connection: Connection,
    filters: DecisionFilter,
    after: Position | None = None,
    limit: int = 50,
) -> list[AuditedDecision]:
    """Up to ``limit`` decisions matching ``filters``, newest first, after ``after``."""
    d = policy_decisions.c
    query = select(policy_decisions).order_by(d.at.desc(), d.id.desc()).limit(limit)
    for column, wanted in ((d.agent, filters.agent), (d.action, filters.action)):
        if wanted is not None:
            query = query.where(column == wanted)
    if filters.outcome is not None:
        query = query.where(d.outcome == filters.outcome)
    if filters.since is not None:
        query = query.where(d.at >= filters.since)
    if filters.until is not None:
        query = query.where(d.at < filters.until)
    if after is not None:
        query = query.where(tuple_(d.at, d.id) < tuple_(after.at, after.id))
    return [AuditedDecision(**row._asdict()) for row in connection.execute(query)]


def spend_on(*, connection: Connection, day: str) -> dict[str, Spend]:
    """What each agent spent on a UTC day (``2030-05-01``), by agent."""
    s = agent_spend.c
    rows = connection.execute(
        select(s.agent, s.tokens, s.cost_usd)
        .where(s.period_kind == "day", s.period == day)
        .order_by(s.agent)
    )
    return {row.agent: Spend(int(row.tokens), float(row.cost_usd)) for row in rows}
