"""The planner's SQL: claims on workflows to plan, and the record of every plan asked for.

Keyword-only functions on the caller's connection. A claim keeps other orchestrators off
a workflow while one asks its model (``claim``), renewed before each model call
(``renew``); it ends when the plan is applied (``finish``), is pushed back after a model
that did not answer (``back_off``), and runs out by itself when its planner died.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from orchestrator.planning.planner import PlanAttempt
from orchestrator.planning.tables import plan_attempts, planner_claims

_CLAIMABLE = text(
    """
    SELECT w.id FROM workflows w
    WHERE w.status = 'planning'
      AND NOT EXISTS (SELECT 1 FROM planner_claims c
                      WHERE c.workflow_id = w.id AND c.claimed_until > :now)
      AND NOT EXISTS (SELECT 1 FROM escalations e
                      WHERE e.workflow_id = w.id AND e.kind = 'plan' AND e.status <> 'resolved')
    ORDER BY w.accepted_at
    LIMIT :limit
    FOR UPDATE OF w SKIP LOCKED
    """
)


@dataclass(frozen=True, slots=True)
class History:
    """What planning a workflow cost so far: plans asked for and tokens used."""

    attempts: int = 0
    tokens: int = 0


def claim(
    conn: Connection, *, instance: str, now: datetime, lease_s: float, limit: int
) -> list[str]:
    """Workflows waiting for a plan that nobody is planning, claimed for ``lease_s``."""
    ids = [row.id for row in conn.execute(_CLAIMABLE, {"now": now, "limit": limit})]
    if ids:
        until = now + timedelta(seconds=lease_s)
        statement = insert(planner_claims).values(
            [{"workflow_id": i, "claimed_by": instance, "claimed_until": until} for i in ids]
        )
        conn.execute(
            statement.on_conflict_do_update(
                index_elements=["workflow_id"],
                set_={"claimed_by": instance, "claimed_until": until},
            )
        )
    return ids


def renew(
    conn: Connection, *, workflow_id: str, instance: str, now: datetime, lease_s: float
) -> bool:
    """Extend ``instance``'s claim on a workflow; False when it no longer holds it."""
    renewed = conn.execute(
        update(planner_claims)
        .where(
            planner_claims.c.workflow_id == workflow_id,
            planner_claims.c.claimed_by == instance,
        )
        .values(claimed_until=now + timedelta(seconds=lease_s))
    )
    return renewed.rowcount == 1


def back_off(conn: Connection, *, workflow_id: str, now: datetime, max_s: float) -> float:
    """The model did not answer: try this workflow again later (doubling, up to
    ``max_s``); the seconds until then."""
    failures = conn.execute(
        update(planner_claims)
        .where(planner_claims.c.workflow_id == workflow_id)
        .values(failures=planner_claims.c.failures + 1)
        .returning(planner_claims.c.failures)
    ).scalar_one_or_none()
    delay = min(max_s, 2.0 ** min(failures or 1, 16))
    conn.execute(
        update(planner_claims)
        .where(planner_claims.c.workflow_id == workflow_id)
        .values(claimed_until=now + timedelta(seconds=delay))
    )
    return delay


def finish(conn: Connection, *, workflow_id: str) -> None:
    """The plan (or the failure) was applied: the claim is over."""
    conn.execute(delete(planner_claims).where(planner_claims.c.workflow_id == workflow_id))


def record(conn: Connection, *, workflow_id: str, attempts: Sequence[PlanAttempt]) -> None:
    """Keep each plan asked for, with its prompt and answer."""
    if not attempts:
        return
    conn.execute(
        insert(plan_attempts),
        [
            {
                "workflow_id": workflow_id,
                "attempt": a.number,
                "model": a.model,
                "prompt": list(a.prompt),
                "answer": a.answer,
                "outcome": a.outcome,
                "problems": list(a.problems),
                "input_tokens": a.input_tokens,
                "output_tokens": a.output_tokens,
                "cost_usd": a.cost_usd,
                "at": a.at,
            }
            for a in attempts
        ],
    )


def history(conn: Connection, *, workflow_ids: Sequence[str]) -> dict[str, History]:
    """Plans asked for and tokens used so far, per workflow."""
    rows = conn.execute(
        select(
            plan_attempts.c.workflow_id,
            func.count().label("attempts"),
            func.coalesce(
                func.sum(plan_attempts.c.input_tokens + plan_attempts.c.output_tokens), 0
            ).label("tokens"),
        )
        .where(plan_attempts.c.workflow_id.in_(list(workflow_ids)))
        .group_by(plan_attempts.c.workflow_id)
    )
    return {row.workflow_id: History(row.attempts, int(row.tokens)) for row in rows}


def attempts_of(conn: Connection, *, workflow_id: str) -> list[dict[str, Any]]:
    """Every plan asked for a workflow, oldest first, as stored."""
    rows = conn.execute(
        select(plan_attempts)
        .where(plan_attempts.c.workflow_id == workflow_id)
        .order_by(plan_attempts.c.attempt, plan_attempts.c.id)
    )
    return [
        {key: value for key, value in row._mapping.items() if key not in ("id", "workflow_id")}
        for row in rows
    ]
