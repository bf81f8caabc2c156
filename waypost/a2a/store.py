"""The ``a2a_bridge_tasks`` table: which remote task each bridged Waypost task follows.

One row per Waypost task, written as soon as the remote agent named its task, so a
task delivered again (a crash, a rebalance), retried after a timeout or run again after
a reviewer's approval goes on with the same remote task instead of starting a second
one. Migration 0016 creates the table; ``MemoryFollowed`` stands in when the worker has
no database (then a restarted worker forgets, and may start a remote task again).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Protocol

from sqlalchemy import Column, Connection, DateTime, Engine, Integer, MetaData, Table, Text, text
from sqlalchemy.dialects.postgresql import insert

metadata = MetaData()

a2a_bridge_tasks = Table(
    "a2a_bridge_tasks",
    metadata,
    Column("task_id", Text, primary_key=True, comment="the Waypost task"),
    Column("capability", Text, nullable=False),
    Column("remote_task_id", Text, nullable=False, comment="the remote agent's task id"),
    Column("context_id", Text, nullable=False),
    Column("attempt", Integer, nullable=False, comment="the attempt that last followed it"),
    Column(
        "answered_escalation_id",
        Text,
        comment="the escalation whose approval was sent to the remote task (not again)",
    ),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)


@dataclass(frozen=True, slots=True)
class Followed:
    """The remote task a Waypost task follows."""

    task_id: str
    capability: str
    remote_task_id: str
    context_id: str
    attempt: int
    answered_escalation_id: str | None = None


def find(conn: Connection, *, task_id: str) -> Followed | None:
    """The remote task ``task_id`` follows, if any."""
    row = conn.execute(
        a2a_bridge_tasks.select().where(a2a_bridge_tasks.c.task_id == task_id)
    ).first()
    if row is None:
        return None
    return Followed(
        task_id=row.task_id,
        capability=row.capability,
        remote_task_id=row.remote_task_id,
        context_id=row.context_id,
        attempt=row.attempt,
        answered_escalation_id=row.answered_escalation_id,
    )


def save(conn: Connection, *, followed: Followed) -> None:
    """Insert or replace the row of ``followed.task_id``."""
    values = {
        "task_id": followed.task_id,
        "capability": followed.capability,
        "remote_task_id": followed.remote_task_id,
        "context_id": followed.context_id,
        "attempt": followed.attempt,
        "answered_escalation_id": followed.answered_escalation_id,
    }
    statement = insert(a2a_bridge_tasks).values(**values)
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[a2a_bridge_tasks.c.task_id],
            set_={
                **{k: v for k, v in values.items() if k != "task_id"},
                "updated_at": text("now()"),
            },
        )
    )


class FollowedTasks(Protocol):
    """Where a bridge worker keeps the remote task of each Waypost task."""

    def find(self, task_id: str) -> Followed | None:
        """The remote task ``task_id`` follows, if any."""
        ...

    def save(self, followed: Followed) -> None:
        """Remember (or update) the remote task a Waypost task follows."""
        ...


class DatabaseFollowed:
    """``FollowedTasks`` in the worker's database (durable)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def find(self, task_id: str) -> Followed | None:
        """The row of ``task_id``, if any."""
        with self._engine.connect() as conn:
            return find(conn, task_id=task_id)

    def save(self, followed: Followed) -> None:
        """Write the row (committed before this returns)."""
        with self._engine.begin() as conn:
            save(conn, followed=followed)


class MemoryFollowed:
    """``FollowedTasks`` in this process only (for workers without a database)."""

    def __init__(self) -> None:
        self._rows: dict[str, Followed] = {}
        self._lock = threading.Lock()

    def find(self, task_id: str) -> Followed | None:
        """The remembered remote task of ``task_id``, if any."""
        with self._lock:
            return self._rows.get(task_id)

    def save(self, followed: Followed) -> None:
        """Remember it until the process ends."""
        with self._lock:
            self._rows[followed.task_id] = replace(followed)
