"""The transactional outbox: events written in the same transaction as the state change
that causes them.

Whoever writes rows publishes them right after commit and removes the acknowledged
ones (``OutboxPublisher``); the relay sweeps rows older than a grace period, whose
writer crashed or whose broker refused them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson
from sqlalchemy import Connection, text

from waypost.bus.records import OutgoingRecord, headers_from_json, headers_to_json

# Binary parameters (%(name)b, see orchestrator/store/workflows.py): bytea arrays in text
# format would escape every byte.
_ENQUEUE = (
    "INSERT INTO outbox (topic, key, value, headers) "
    "SELECT v.topic, v.key, v.value, v.headers::jsonb FROM unnest("
    "CAST(%(topic)b AS text[]), CAST(%(key)b AS bytea[]), CAST(%(value)b AS bytea[]), "
    "CAST(%(headers)b AS text[])) AS v(topic, key, value, headers) RETURNING id"
)
_CLAIM = text(
    "SELECT id, topic, key, value, headers FROM outbox WHERE created_at <= :before "
    "ORDER BY created_at, id LIMIT :limit FOR UPDATE SKIP LOCKED"
)
_POSTPONE = "UPDATE outbox SET created_at = now() WHERE id = ANY(CAST(%(ids)b AS int8[]))"
_REMOVE = "DELETE FROM outbox WHERE id = ANY(CAST(%(ids)b AS int8[]))"
_BACKLOG = text("SELECT count(*) FROM outbox")
_PENDING_KEYS = (
    "SELECT DISTINCT key FROM outbox WHERE topic = ANY(CAST(%(topics)b AS text[])) "
    "AND key = ANY(CAST(%(keys)b AS bytea[]))"
)


def enqueue(conn: Connection, *, records: Sequence[OutgoingRecord]) -> list[int]:
    """Add records to the outbox; returns their ids, in order."""
    if not records:
        return []
    rows = conn.exec_driver_sql(
        _ENQUEUE,
        {
            "topic": [r.topic for r in records],
            "key": [r.key for r in records],
            "value": [r.value for r in records],
            "headers": [orjson.dumps(headers_to_json(r.headers)).decode() for r in records],
        },
    )
    return [row.id for row in rows]


def claim(
    conn: Connection, *, limit: int, created_before: datetime
) -> list[tuple[int, OutgoingRecord]]:
    """Rows written before ``created_before``, oldest first, locked; other relays skip them."""
    rows = conn.execute(_CLAIM, {"before": created_before, "limit": limit}).all()
    return [
        (
            row.id,
            OutgoingRecord(
                row.topic,
                row.key,
                row.value,
                headers_from_json(row.headers),
            ),
        )
        for row in rows
    ]


def remove(conn: Connection, *, ids: Sequence[int]) -> None:
    """Forget records the broker acknowledged."""
    if ids:
        conn.exec_driver_sql(_REMOVE, {"ids": list(ids)})


def postpone(conn: Connection, *, ids: Sequence[int]) -> None:
    """Send rows the broker refused to the back of the queue (a topic that no longer
    exists must not keep every later row from being swept)."""
    if ids:
        conn.exec_driver_sql(_POSTPONE, {"ids": list(ids)})


def pending_keys(conn: Connection, *, topics: Sequence[str], keys: Sequence[str]) -> set[str]:
    """Which of these keys still have a record waiting on one of these topics."""
    if not keys or not topics:
        return set()
    rows = conn.exec_driver_sql(
        _PENDING_KEYS, {"topics": list(topics), "keys": [k.encode() for k in keys]}
    )
    return {bytes(row.key).decode() for row in rows}


def backlog(conn: Connection) -> int:
    """How many records wait to be published."""
    return int(conn.execute(_BACKLOG).scalar_one())
