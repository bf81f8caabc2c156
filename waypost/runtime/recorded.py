"""The ``agent_results`` table: the records an agent worker published for each task
attempt (its result, and the governance events beside it), kept for a while so that a
task delivered again is answered from here instead of by running its handler again.

Migration 0014 creates the table; a test checks that it and this metadata agree.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    any_,
    cast,
    delete,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert

from waypost.bus.records import OutgoingRecord, headers_from_json, headers_to_json

metadata = MetaData()

agent_results = Table(
    "agent_results",
    metadata,
    Column("task_id", Text, primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("capability", Text, nullable=False),
    Column(
        "records",
        LargeBinary,
        nullable=False,
        comment="the records published for the attempt (result and governance events), "
        "as JSON with base64 keys and values",
    ),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    # Unlogged (migration 0014): written once per task; emptied by a PostgreSQL crash,
    # after which a handler may run once more.
    prefixes=["UNLOGGED"],
)

# A task's result, an event beside it, or a recorded result published again (which the
# worker's counters leave out: the task was counted when it ran).
_INSERT = insert(agent_results).on_conflict_do_nothing()

Kind = Literal["completed", "failed", "governance", "repeated"]
Attempt = tuple[str, int]  # task id, attempt


@dataclass(frozen=True, slots=True)
class Reply:
    """One record a worker publishes for a task: its result, or an event beside it."""

    record: OutgoingRecord
    kind: Kind


@dataclass(frozen=True, slots=True)
class Answer:
    """Everything a worker published for one task attempt."""

    task_id: str
    attempt: int
    capability: str
    replies: tuple[Reply, ...]


def insert_answers(conn: Connection, *, answers: Sequence[Answer]) -> None:
    """Record answers; an attempt recorded already keeps its first answer."""
    if not answers:
        return
    rows = [
        {
            "task_id": answer.task_id,
            "attempt": answer.attempt,
            "capability": answer.capability,
            # Bytes, not JSONB: stored and read back whole, never queried inside.
            "records": orjson.dumps([_to_json(reply) for reply in answer.replies]),
        }
        for answer in answers
    ]
    # One cached statement, executed for many rows (psycopg sends them together).
    conn.execute(_INSERT, rows)


def find_answers(conn: Connection, *, attempts: Sequence[Attempt]) -> dict[Attempt, list[Reply]]:
    """The recorded answers of these attempts (those not recorded are left out)."""
    if not attempts:
        return {}
    wanted = set(attempts)
    # One array parameter (the key's first column) rather than hundreds of tuples: a
    # batch of 500 tasks costs one index scan, not a statement of 1,000 parameters.
    rows = conn.execute(
        select(agent_results.c.task_id, agent_results.c.attempt, agent_results.c.records).where(
            agent_results.c.task_id == any_(cast(sorted({t for t, _ in wanted}), ARRAY(Text)))
        )
    )
    return {
        (row.task_id, row.attempt): [_from_json(r) for r in orjson.loads(row.records)]
        for row in rows
        if (row.task_id, row.attempt) in wanted
    }


def delete_before(conn: Connection, *, before: datetime) -> int:
    """Forget answers recorded before ``before``; how many were deleted."""
    result = conn.execute(delete(agent_results).where(agent_results.c.recorded_at < before))
    return int(result.rowcount or 0)


def _to_json(reply: Reply) -> dict[str, Any]:
    record = reply.record
    return {
        "kind": reply.kind,
        "topic": record.topic,
        "key": _b64(record.key),
        "value": _b64(record.value),
        "headers": headers_to_json(record.headers),
    }


def _from_json(item: dict[str, Any]) -> Reply:
    record = OutgoingRecord(
        topic=item["topic"],
        key=_unb64(item["key"]),
        value=_unb64(item["value"]),
        headers=headers_from_json(item["headers"]),
    )
    return Reply(record, item["kind"])


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _unb64(text_: str | None) -> bytes | None:
    return None if text_ is None else base64.b64decode(text_)
