"""The audit log as people read it: every human and system action in ``audit_events``,
filtered by actor, action, workflow and time, in keyset pages (newest first) or streamed
whole for an export.

Pages walk ``audit_events_at`` newest first and stop after a page; an export reads with a
server-side cursor in batches, so exporting a million entries never holds them all.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, select, tuple_

from orchestrator.store.tables import audit_events
from waypost.keyset import Position

EXPORT_BATCH = 500


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries to show; None: any."""

    actor: str | None = None
    action: str | None = None
    workflow_id: str | None = None
    since: datetime | None = None  # at or after
    until: datetime | None = None  # before


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One row of the audit log."""

    id: int
    at: datetime
    actor: str
    action: str
    escalation_id: str | None = None
    workflow_id: str | None = None
    version: int | None = None
    digest: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def position(self) -> Position:
        """Where a page ending with this entry ended."""
        return Position(self.at, self.id)


def page(
    conn: Connection, *, filters: AuditFilter, after: Position | None = None, limit: int = 50
) -> list[AuditRecord]:
    """Up to ``limit`` entries matching ``filters``, newest first, after ``after``."""
    return [_record(row) for row in conn.execute(_query(filters, after).limit(limit))]


def stream(
    conn: Connection, *, filters: AuditFilter, after: Position | None = None
) -> Iterator[AuditRecord]:
    """Every entry matching ``filters``, newest first, read in batches."""
    result = conn.execution_options(yield_per=EXPORT_BATCH).execute(_query(filters, after))
    for row in result:
        yield _record(row)


def _query(filters: AuditFilter, after: Position | None) -> Select[Any]:
    a = audit_events.c
    query = select(audit_events).order_by(a.at.desc(), a.id.desc())
    for column, wanted in (
        (a.actor, filters.actor),
        (a.action, filters.action),
        (a.workflow_id, filters.workflow_id),
    ):
        if wanted is not None:
            query = query.where(column == wanted)
    if filters.since is not None:
        query = query.where(a.at >= filters.since)
    if filters.until is not None:
        query = query.where(a.at < filters.until)
    if after is not None:
        query = query.where(tuple_(a.at, a.id) < tuple_(after.at, after.id))
    return query


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        escalation_id=row.escalation_id,
        workflow_id=row.workflow_id,
        version=row.version,
        digest=row.digest,
        detail=row.detail or {},
    )
