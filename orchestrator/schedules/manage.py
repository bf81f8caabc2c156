"""Changing schedules: adding, pausing, resuming and removing them (the API and the
CLI), and syncing the YAML-defined ones (the orchestrator, at start). Every change is
audited with who made it, in the transaction that makes it.

YAML files and the API share one table. A file-defined schedule (``source: file``) is
added, updated and removed by the sync as its file says; the API cannot remove it (edit
the file) but can pause and resume it, and that state survives a sync. A name is either
a file's or the API's: the sync leaves an API-defined schedule of the same name alone
and logs why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from orchestrator.schedules import store
from orchestrator.schedules.definition import Schedule
from orchestrator.schedules.errors import ScheduleConflict, ScheduleNotFound
from orchestrator.schedules.files import FileSchedule
from orchestrator.schedules.policy import next_fire
from orchestrator.schedules.store import StoredSchedule
from orchestrator.store import audit
from orchestrator.store.audit import AuditEntry

log = logging.getLogger(__name__)

FILE = "file"
API = "api"
SYNC_ACTOR = "orchestrator (schedule files)"


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What a sync changed, by schedule name."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()


def add(conn: Connection, *, schedule: Schedule, actor: str, now: datetime) -> StoredSchedule:
    """Add an API-defined schedule; its first slot is the first after ``now``.
    ScheduleConflict if the name is taken."""
    row = _new_row(schedule, source=API, file=None, actor=actor, now=now)
    if not store.insert_new(conn, row=row):
        existing = store.get(conn, name=schedule.name)
        where = f" in {existing.file}" if existing is not None and existing.file else ""
        raise ScheduleConflict(
            f"a schedule named {schedule.name!r} exists already{where}; remove it first or "
            "choose another name"
        )
    _audit(conn, actor, "schedule.created", row, now)
    return row


def pause(conn: Connection, *, name: str, actor: str, now: datetime) -> StoredSchedule:
    """Pause a schedule (no slot fires until it is resumed); pausing twice is harmless."""
    row = _locked(conn, name)
    if not row.paused:
        store.set_paused(
            conn,
            name=name,
            paused=True,
            fired_through=row.fired_through,
            next_fire_at=row.next_fire_at,
            now=now,
            actor=actor,
        )
        _audit(conn, actor, "schedule.paused", row, now)
    return _get(conn, name)


def resume(conn: Connection, *, name: str, actor: str, now: datetime) -> StoredSchedule:
    """Resume a paused schedule: slots that came while it was paused do not fire; the
    next is the first after ``now``."""
    row = _locked(conn, name)
    if row.paused:
        timing = Schedule.read(name, row.definition).timing
        store.set_paused(
            conn,
            name=name,
            paused=False,
            fired_through=now,
            next_fire_at=timing.after(now),
            now=now,
            actor=actor,
        )
        _audit(conn, actor, "schedule.resumed", row, now)
    return _get(conn, name)


def remove(conn: Connection, *, name: str, actor: str, now: datetime) -> None:
    """Remove an API-defined schedule; ScheduleConflict for a file-defined one."""
    row = _locked(conn, name)
    if row.source == FILE:
        raise ScheduleConflict(
            f"schedule {name!r} is defined in {row.file}; remove it from that file (the "
            "orchestrators drop it when they start), or pause it"
        )
    store.remove(conn, name=name)
    _audit(conn, actor, "schedule.removed", row, now)


def sync(conn: Connection, *, defined: Sequence[FileSchedule], now: datetime) -> SyncReport:
    """Make the table's file-defined schedules those of the files: add new ones, update
    changed ones (keeping paused and decided slots), remove those no file defines."""
    store.lock_for_sync(conn)
    existing = {row.name: row for row in store.list_all(conn)}
    added: list[str] = []
    updated: list[str] = []
    refused: list[str] = []
    for entry in defined:
        schedule = entry.schedule
        row = existing.get(schedule.name)
        if row is None:
            new = _new_row(schedule, source=FILE, file=entry.file, actor=SYNC_ACTOR, now=now)
            store.insert_new(conn, row=new)
            _audit(conn, SYNC_ACTOR, "schedule.created", new, now)
            added.append(schedule.name)
        elif row.source != FILE:
            log.error(
                "schedule %r in %s is not used: the API defined a schedule of that name; "
                "remove one of them (`waypost schedule rm %s`, or edit the file)",
                schedule.name,
                entry.file,
                schedule.name,
            )
            refused.append(schedule.name)
        elif dict(row.definition) != schedule.document() or row.file != entry.file:
            store.redefine(
                conn,
                name=schedule.name,
                file=entry.file,
                definition=schedule.document(),
                next_fire_at=schedule.timing.after(row.fired_through),
                now=now,
                actor=SYNC_ACTOR,
            )
            _audit(conn, SYNC_ACTOR, "schedule.updated", _get(conn, schedule.name), now)
            updated.append(schedule.name)
    names = {entry.schedule.name for entry in defined}
    removed = [n for n, row in existing.items() if row.source == FILE and n not in names]
    for name in removed:
        store.remove(conn, name=name)
        _audit(conn, SYNC_ACTOR, "schedule.removed", existing[name], now)
    return SyncReport(tuple(added), tuple(updated), tuple(removed), tuple(refused))


def upcoming(row: StoredSchedule, now: datetime) -> datetime | None:
    """When a schedule fires next (None while paused)."""
    if row.paused:
        return None
    timing = Schedule.read(row.name, row.definition).timing
    return next_fire(timing, fired_through=row.fired_through, now=now)


def _new_row(
    schedule: Schedule, *, source: str, file: str | None, actor: str, now: datetime
) -> StoredSchedule:
    return StoredSchedule(
        name=schedule.name,
        source=source,
        file=file,
        definition=schedule.document(),
        paused=False,
        fired_through=now,
        next_fire_at=schedule.timing.after(now),
        last_error=None,
        created_at=now,
        updated_at=now,
        updated_by=actor,
    )


def _locked(conn: Connection, name: str) -> StoredSchedule:
    row = store.lock(conn, name=name)
    if row is None:
        raise ScheduleNotFound(name)
    return row


def _get(conn: Connection, name: str) -> StoredSchedule:
    row = store.get(conn, name=name)
    if row is None:
        raise ScheduleNotFound(name)
    return row


def _audit(conn: Connection, actor: str, action: str, row: StoredSchedule, now: datetime) -> None:
    detail = {"schedule": row.name, "source": row.source, "definition": dict(row.definition)}
    if row.file:
        detail["file"] = row.file
    audit.record(conn, entries=[AuditEntry(actor=actor, action=action, detail=detail, at=now)])
