"""The schedules' SQL: keyword-only functions that take the caller's connection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from orchestrator.schedules.tables import schedule_fires, schedules

# Orchestrators starting together sync their schedule files one after the other.
_SYNC_LOCK = 0x5C4ED01E


@dataclass(frozen=True, slots=True)
class StoredSchedule:
    """A schedule's row."""

    name: str
    source: str
    file: str | None
    definition: Mapping[str, Any]
    paused: bool
    fired_through: datetime
    next_fire_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class FiredSlot:
    """A slot that fired."""

    schedule: str
    slot: datetime
    workflow_id: str | None
    late: bool
    error: str | None
    fired_at: datetime


def get(conn: Connection, *, name: str) -> StoredSchedule | None:
    """One schedule, or None."""
    row = conn.execute(select(schedules).where(schedules.c.name == name)).one_or_none()
    return StoredSchedule(**row._mapping) if row is not None else None


def list_all(conn: Connection) -> list[StoredSchedule]:
    """Every schedule, by name."""
    rows = conn.execute(select(schedules).order_by(schedules.c.name)).all()
    return [StoredSchedule(**row._mapping) for row in rows]


def insert_new(conn: Connection, *, row: StoredSchedule) -> bool:
    """Add a schedule; False if the name is taken."""
    values = {f.name: getattr(row, f.name) for f in fields(row)}
    inserted = conn.execute(
        pg_insert(schedules)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(schedules.c.name)
    ).first()
    return inserted is not None


def redefine(
    conn: Connection,
    *,
    name: str,
    file: str | None,
    definition: Mapping[str, Any],
    next_fire_at: datetime,
    now: datetime,
    actor: str,
) -> None:
    """Replace a schedule's definition, keeping its state (paused, decided slots)."""
    conn.execute(
        update(schedules)
        .where(schedules.c.name == name)
        .values(
            file=file,
            definition=dict(definition),
            next_fire_at=next_fire_at,
            updated_at=now,
            updated_by=actor,
        )
    )


def set_paused(
    conn: Connection,
    *,
    name: str,
    paused: bool,
    fired_through: datetime,
    next_fire_at: datetime,
    now: datetime,
    actor: str,
) -> None:
    """Pause or resume a schedule."""
    conn.execute(
        update(schedules)
        .where(schedules.c.name == name)
        .values(
            paused=paused,
            fired_through=fired_through,
            next_fire_at=next_fire_at,
            updated_at=now,
            updated_by=actor,
        )
    )


def remove(conn: Connection, *, name: str) -> None:
    """Delete a schedule (its fired slots stay, so the same slot never fires twice)."""
    conn.execute(delete(schedules).where(schedules.c.name == name))


def lock(conn: Connection, *, name: str) -> StoredSchedule | None:
    """One schedule, locked until the transaction ends (waiting for another holder)."""
    row = conn.execute(
        select(schedules).where(schedules.c.name == name).with_for_update()
    ).one_or_none()
    return StoredSchedule(**row._mapping) if row is not None else None


def due_names(conn: Connection, *, now: datetime, limit: int) -> list[str]:
    """Names of the schedules due at ``now`` (not paused), soonest first."""
    return list(
        conn.execute(
            select(schedules.c.name)
            .where(~schedules.c.paused, schedules.c.next_fire_at <= now)
            .order_by(schedules.c.next_fire_at)
            .limit(limit)
        ).scalars()
    )


def claim_due(conn: Connection, *, name: str, now: datetime) -> StoredSchedule | None:
    """The schedule locked for one round, if it is still due and no other orchestrator
    holds it (that one fires it: SKIP LOCKED)."""
    row = conn.execute(
        select(schedules)
        .where(schedules.c.name == name, ~schedules.c.paused, schedules.c.next_fire_at <= now)
        .with_for_update(skip_locked=True)
    ).one_or_none()
    return StoredSchedule(**row._mapping) if row is not None else None


def advance(
    conn: Connection,
    *,
    name: str,
    fired_through: datetime,
    next_fire_at: datetime,
    last_error: str | None,
) -> None:
    """Record a round: the slots decided, when to look again, and the last failure."""
    conn.execute(
        update(schedules)
        .where(schedules.c.name == name)
        .values(fired_through=fired_through, next_fire_at=next_fire_at, last_error=last_error)
    )


def claim_slot(conn: Connection, *, fired: FiredSlot) -> bool:
    """Record that a slot fired; False if it had (the unique key of schedule and slot)."""
    inserted = conn.execute(
        pg_insert(schedule_fires)
        .values(
            schedule=fired.schedule,
            slot=fired.slot,
            workflow_id=fired.workflow_id,
            late=fired.late,
            error=fired.error,
            fired_at=fired.fired_at,
        )
        .on_conflict_do_nothing(index_elements=["schedule", "slot"])
        .returning(schedule_fires.c.slot)
    ).first()
    return inserted is not None


def fired(conn: Connection, *, schedule: str, limit: int = 100) -> list[FiredSlot]:
    """A schedule's latest fired slots, newest first."""
    rows = conn.execute(
        select(schedule_fires)
        .where(schedule_fires.c.schedule == schedule)
        .order_by(schedule_fires.c.slot.desc())
        .limit(limit)
    ).all()
    return [FiredSlot(**row._mapping) for row in rows]


def fire_count(conn: Connection, *, schedule: str) -> int:
    """How many slots of a schedule fired."""
    found = conn.execute(
        select(func.count()).where(schedule_fires.c.schedule == schedule)
    ).scalar_one()
    return int(found)


def lock_for_sync(conn: Connection) -> None:
    """Serialise syncing schedule files among orchestrators (until the transaction ends)."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SYNC_LOCK})
