"""Counts read off the tables at scrape time, for the orchestrator's gauges.

Backlogs come from our own tables rather than from Kafka's offsets: a broker's
watermarks are not exact for batched produces everywhere (Tansu), the tables are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, case, func, literal, select

from orchestrator.store.tables import circuit_breakers, dead_letters, escalations, outbox, tasks
from waypost.governance.engine import utc_day
from waypost.governance.tables import agent_spend

# Escalation age buckets: label, upper bound in seconds (None: no bound).
AGE_BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("lt_5m", 300.0),
    ("5m_1h", 3600.0),
    ("1h_24h", 86400.0),
    ("ge_24h", None),
)
# Tasks that wait for an agent or a retry: what "backlog" means per capability.
_WAITING = ("dispatched", "retry_wait")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the gauges show, read in one transaction."""

    outbox_backlog: int
    task_backlog: dict[tuple[str, str], int]  # (capability, status) -> tasks
    escalations_pending: dict[tuple[str, str], int]  # (capability, age bucket) -> count
    breakers: dict[str, str]  # capability -> closed | open | half_open
    spend_today: dict[str, tuple[int, float]]  # agent -> (tokens, USD)
    dead_letters: dict[tuple[str, str, str], int]  # (topic, error class, status) -> count


def snapshot(conn: Connection, *, now: datetime) -> Snapshot:
    """Read every gauge's value."""
    backlog = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    task_rows = conn.execute(
        select(tasks.c.capability, tasks.c.status, func.count())
        .where(tasks.c.status.in_(_WAITING))
        .group_by(tasks.c.capability, tasks.c.status)
    ).all()
    age = func.extract("epoch", literal(now) - escalations.c.opened_at)
    bucket = case(
        *[(age < bound, label) for label, bound in AGE_BUCKETS if bound is not None],
        else_=AGE_BUCKETS[-1][0],
    )
    escalation_rows = conn.execute(
        select(escalations.c.capability, bucket, func.count())
        .where(escalations.c.status == "pending")
        .group_by(escalations.c.capability, bucket)
    ).all()
    breaker_rows = conn.execute(select(circuit_breakers.c.capability, circuit_breakers.c.state))
    spend_rows = conn.execute(
        select(agent_spend.c.agent, agent_spend.c.tokens, agent_spend.c.cost_usd).where(
            agent_spend.c.period_kind == "day",
            agent_spend.c.period == utc_day(now),
        )
    ).all()
    dead_rows = conn.execute(
        select(
            dead_letters.c.topic,
            func.coalesce(dead_letters.c.error_class, ""),
            dead_letters.c.status,
            func.count(),
        ).group_by(dead_letters.c.topic, dead_letters.c.error_class, dead_letters.c.status)
    ).all()
    return Snapshot(
        outbox_backlog=int(backlog),
        task_backlog={(r[0], r[1]): int(r[2]) for r in task_rows},
        escalations_pending={(r[0], r[1]): int(r[2]) for r in escalation_rows},
        breakers={r[0]: r[1] for r in breaker_rows},
        spend_today={r[0]: (int(r[1]), float(r[2])) for r in spend_rows},
        dead_letters={(r[0], r[1], r[2]): int(r[3]) for r in dead_rows},
    )
