"""The audit trail: who did what to which escalation, at which version, and when."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from orchestrator.store.tables import audit_events


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One thing somebody (or the system) did."""

    actor: str
    action: str
    escalation_id: str | None = None
    workflow_id: str | None = None
    version: int | None = None
    digest: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    at: datetime | None = None


def record(conn: Connection, *, entries: Sequence[AuditEntry]) -> None:
    """Append entries (in the caller's transaction, with the change they describe)."""
    if not entries:
        return
    conn.execute(
        insert(audit_events),
        [
            {
                "actor": e.actor,
                "action": e.action,
                "escalation_id": e.escalation_id,
                "workflow_id": e.workflow_id,
                "version": e.version,
                "digest": e.digest,
                "detail": dict(e.detail),
                **({"at": e.at} if e.at is not None else {}),
            }
            for e in entries
        ],
    )


def for_escalation(conn: Connection, *, escalation_id: str) -> list[AuditEntry]:
    """An escalation's history, oldest first."""
    rows = conn.execute(
        select(audit_events)
        .where(audit_events.c.escalation_id == escalation_id)
        .order_by(audit_events.c.at, audit_events.c.id)
    ).all()
    return [_entry(row) for row in rows]


def recent(
    conn: Connection, *, actions: Sequence[str] | None = None, limit: int = 100
) -> list[AuditEntry]:
    """The newest entries, optionally of some actions only."""
    query = select(audit_events).order_by(audit_events.c.at.desc(), audit_events.c.id.desc())
    if actions:
        query = query.where(audit_events.c.action.in_(list(actions)))
    return [_entry(row) for row in conn.execute(query.limit(limit)).all()]


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        actor=row.actor,
        action=row.action,
        escalation_id=row.escalation_id,
        workflow_id=row.workflow_id,
        version=row.version,
        digest=row.digest,
        detail=row.detail,
        at=row.at,
    )
