"""The transactional outbox: events written in the same transaction as the state change
that causes them, published later by the relay."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, func, insert, select, text

from orchestrator.store.tables import outbox
from waypost.bus.records import OutgoingRecord


def channel_for(schema: str) -> str:
    """The NOTIFY channel that wakes the relays of one schema."""
    return f"waypost_outbox_{schema}"[:63]


def enqueue(
    conn: Connection, *, records: Sequence[OutgoingRecord], notify_channel: str | None = None
) -> None:
    """Add records to the outbox; optionally wake relays in other processes on commit."""
    if not records:
        return
    conn.execute(
        insert(outbox),
        [
            {
                "topic": r.topic,
                "key": r.key,
                "value": r.value,
                "headers": [[name, value.decode()] for name, value in r.headers],
            }
            for r in records
        ],
    )
    if notify_channel is not None:
        # Delivered at commit, only if the transaction commits.
        conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": notify_channel})


def claim(conn: Connection, *, limit: int) -> list[tuple[int, OutgoingRecord]]:
    """The oldest unpublished records, locked; other relays skip them (SKIP LOCKED)."""
    rows = conn.execute(
        select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.value, outbox.c.headers)
        .order_by(outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    return [
        (
            row.id,
            OutgoingRecord(
                row.topic,
                row.key,
                row.value,
                tuple((name, value.encode()) for name, value in row.headers),
            ),
        )
        for row in rows
    ]


def remove(conn: Connection, *, ids: Sequence[int]) -> None:
    """Forget records the broker acknowledged."""
    if ids:
        conn.execute(delete(outbox).where(outbox.c.id.in_(list(ids))))


def backlog(conn: Connection) -> int:
    """How many records wait to be published."""
    return int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())
