"""Decision quality read off the orchestrator's tables, and the drift state.

A result is attributed to the capability and version of the agent that answered its
task (``tasks.agent``; the step's capability when the agent did not say). A task keeps
the agent of its latest result, so when a retry is answered by another version, the
task's earlier results count for that version too: rare, and said in the docs.

Every query takes a range of time: results by the time their attempt finished,
escalations by the time they opened (both indexed, ``tables``), bucketed by UTC day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVarTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    DateTime,
    Select,
    cast,
    column,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB, insert

from orchestrator.quality.counts import (
    RESULT_KINDS,
    UNKNOWN_VERSION,
    VERDICT_OF_ACTION,
    Counts,
    DayKey,
    Verdict,
)
from orchestrator.quality.distance import edit_distance
from orchestrator.quality.drift import DriftState, StateKey
from orchestrator.quality.tables import decision_quality_drifts
from orchestrator.store.tables import escalations, tasks

Ts = TypeVarTuple("Ts")
_LOCK_NAME = "waypost.decision_quality"


@dataclass(frozen=True, slots=True)
class Scope:
    """Which results to read: a time range, optionally one capability and version."""

    since: datetime
    until: datetime
    capability: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Judged:
    """One escalation of a version: what the agent proposed and why, next to the
    reviewer's verdict and why (verdict None: not decided yet)."""

    escalation_id: str
    workflow_id: str
    capability: str
    version: str
    step: str
    kind: str
    status: str
    opened_at: datetime
    confidence: float | None
    reasoning: list[str]
    proposed: Any
    verdict: Verdict | None
    reviewer: str | None
    reason: str | None
    decided_at: datetime | None
    edited: Any
    edit_distance: float | None


def day_counts(conn: Connection, *, scope: Scope) -> dict[DayKey, Counts]:
    """Counts per (capability, version, UTC day) in the scope, edit distances and
    agreement included."""
    found: dict[DayKey, Counts] = {}
    for row in conn.execute(_results(scope)):
        found[(row.capability, row.version, row.day)] = Counts(results=row.results)
    reviewers: dict[DayKey, int] = {}
    for row in conn.execute(_escalated(scope)):
        key = (row.capability, row.version, row.day)
        reviewers[key] = row.reviewers
        found[key] = found.get(key, Counts()) + Counts(
            escalated=row.escalated,
            approved=row.approved,
            edited=row.edited,
            rejected=row.rejected,
            retried=row.retried,
        )
    for row in conn.execute(_edits(scope)):
        if row.proposed is None or row.edited is None:
            continue
        key = (row.capability, row.version, row.day)
        found[key] = found[key].with_edit(edit_distance(row.proposed, row.edited))
    return {key: counts.with_agreement(reviewers.get(key, 0)) for key, counts in found.items()}


def judged(conn: Connection, *, scope: Scope, limit: int = 50) -> list[Judged]:
    """Escalations in the scope (of a version, or of every one), newest first, each with
    the agent's reasoning and the reviewer's verdict."""
    capability, version, _ = _attribution()
    rows = conn.execute(
        _where(
            select(
                escalations.c.id,
                escalations.c.workflow_id,
                capability.label("capability"),
                version.label("version"),
                escalations.c.step,
                escalations.c.kind,
                escalations.c.status,
                escalations.c.opened_at,
                escalations.c.content,
                escalations.c.decision,
                tasks.c.reasoning,
            ).select_from(escalations.join(tasks, tasks.c.id == escalations.c.task_id)),
            scope,
            capability,
            version,
        )
        .order_by(escalations.c.opened_at.desc(), escalations.c.id)
        .limit(limit)
    ).all()
    return [_judged(row) for row in rows]


def lock(conn: Connection) -> None:
    """Hold the drift check's lock until the transaction ends (one checker at a time,
    per schema)."""
    name = func.concat(func.current_schema(), literal(f".{_LOCK_NAME}"))
    conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(name))))


def drift_states(conn: Connection) -> dict[StateKey, DriftState]:
    """Every stored drift state, by (capability, version, verdict)."""
    rows = conn.execute(select(decision_quality_drifts)).all()
    states = [DriftState(**row._mapping) for row in rows]
    return {state.key: state for state in states}


def save_drift_states(conn: Connection, *, states: list[DriftState]) -> None:
    """Store states, replacing those of the same capability, version and verdict."""
    if not states:
        return
    statement = insert(decision_quality_drifts).values(
        [
            {
                "capability": s.capability,
                "version": s.version,
                "verdict": s.verdict,
                "drifted": s.drifted,
                "rate": s.rate,
                "threshold": s.threshold,
                "count": s.count,
                "decided": s.decided,
                "changed_at": s.changed_at,
            }
            for s in states
        ]
    )
    conn.execute(
        statement.on_conflict_do_update(
            constraint="decision_quality_drifts_pkey",
            set_={
                name: statement.excluded[name]
                for name in ("drifted", "rate", "threshold", "count", "decided", "changed_at")
            },
        )
    )


# --- the queries ------------------------------------------------------------------------


def _attribution() -> tuple[ColumnElement[str], ColumnElement[str], ColumnElement[date]]:
    """(capability, version, day) of an escalation, from its task's agent."""
    capability = func.coalesce(tasks.c.agent["capability"].astext, escalations.c.capability)
    version = func.coalesce(tasks.c.agent["version"].astext, literal(UNKNOWN_VERSION))
    day = cast(func.timezone("UTC", escalations.c.opened_at), Date)
    return capability, version, day


def _where(
    query: Select[*Ts], scope: Scope, capability: ColumnElement[str], version: ColumnElement[str]
) -> Select[*Ts]:
    query = query.where(
        escalations.c.kind.in_(RESULT_KINDS),
        escalations.c.opened_at >= scope.since,
        escalations.c.opened_at < scope.until,
    )
    if scope.capability is not None:
        query = query.where(capability == scope.capability)
    if scope.version is not None:
        query = query.where(version == scope.version)
    return query


def _escalated(scope: Scope) -> Select[*tuple[Any, ...]]:
    capability, version, day = _attribution()
    action = escalations.c.decision["action"].astext
    verdicts = [
        func.count().filter(action == action_name).label(verdict)
        for action_name, verdict in VERDICT_OF_ACTION.items()
    ]
    return _where(
        select(
            capability.label("capability"),
            version.label("version"),
            day.label("day"),
            func.count().label("escalated"),
            *verdicts,
            func.count(escalations.c.decision["reviewer"].astext.distinct()).label("reviewers"),
        ).select_from(escalations.join(tasks, tasks.c.id == escalations.c.task_id)),
        scope,
        capability,
        version,
    ).group_by(capability, version, day)


def _edits(scope: Scope) -> Select[*tuple[Any, ...]]:
    capability, version, day = _attribution()
    return _where(
        select(
            capability.label("capability"),
            version.label("version"),
            day.label("day"),
            escalations.c.content["output"].label("proposed"),
            escalations.c.decision["output"].label("edited"),
        ).select_from(escalations.join(tasks, tasks.c.id == escalations.c.task_id)),
        scope,
        capability,
        version,
    ).where(escalations.c.decision["action"].astext == "edit")


def _results(scope: Scope) -> Select[*tuple[Any, ...]]:
    """Attempts that returned an output, per (capability, version, day they finished)."""
    attempt = func.jsonb_array_elements(tasks.c.attempts).table_valued(column("value", JSONB))
    finished = cast(attempt.c.value["finished_at"].astext, DateTime(timezone=True))
    capability = func.coalesce(tasks.c.agent["capability"].astext, tasks.c.capability)
    version = func.coalesce(tasks.c.agent["version"].astext, literal(UNKNOWN_VERSION))
    day = cast(func.timezone("UTC", finished), Date)
    query = (
        select(
            capability.label("capability"),
            version.label("version"),
            day.label("day"),
            func.count().label("results"),
        )
        .select_from(tasks.join(attempt, true()))
        .where(
            tasks.c.agent.is_not(None),
            # Every attempt finished before its task last changed: the index narrows.
            tasks.c.updated_at >= scope.since,
            attempt.c.value["outcome"].astext == "completed",
            finished >= scope.since,
            finished < scope.until,
        )
    )
    if scope.capability is not None:
        query = query.where(capability == scope.capability)
    if scope.version is not None:
        query = query.where(version == scope.version)
    return query.group_by(capability, version, day)


def _judged(row: Any) -> Judged:
    content: Mapping[str, Any] = row.content
    decision: Mapping[str, Any] = row.decision or {}
    verdict = VERDICT_OF_ACTION.get(str(decision.get("action")))
    proposed, edited = content.get("output"), decision.get("output")
    reasoning = content.get("reasoning") or list(row.reasoning or [])
    confidence = content.get("confidence")
    distance = (
        edit_distance(proposed, edited)
        if verdict == "edited" and proposed is not None and edited is not None
        else None
    )
    return Judged(
        escalation_id=row.id,
        workflow_id=row.workflow_id,
        capability=row.capability,
        version=row.version,
        step=row.step,
        kind=row.kind,
        status=row.status,
        opened_at=row.opened_at,
        confidence=float(confidence) if isinstance(confidence, int | float) else None,
        reasoning=[str(note) for note in reasoning],
        proposed=proposed,
        verdict=verdict,
        reviewer=decision.get("reviewer") if verdict else None,
        reason=decision.get("reason") if verdict else None,
        decided_at=_moment(decision.get("decided_at")) if verdict else None,
        edited=edited if verdict == "edited" else None,
        edit_distance=distance,
    )


def _moment(value: Any) -> datetime | None:
    """A stored ISO time (decisions keep theirs as text)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else None
