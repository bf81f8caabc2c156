"""The agent registry: one row per agent worker process and capability.

A worker announces each capability it runs when it starts (version, input and output
JSON Schema, instance, host, pid, concurrency), then updates ``last_heartbeat`` and its
task counters every few seconds, and sets ``stopped_at`` when it stops cleanly.
``GET /api/v1/agents`` and `waypost agents ls` read it. Times come from the database's
clock, so the age of a heartbeat does not depend on the worker's clock.

A row whose heartbeat is more than three intervals old is ``stale`` (its worker was
killed, hangs or lost the database); stopped and stale rows are deleted a day later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Float,
    Integer,
    MetaData,
    Table,
    Text,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert

metadata = MetaData()

agent_instances = Table(
    "agent_instances",
    metadata,
    Column("capability", Text, primary_key=True),
    Column("instance", Text, primary_key=True),
    Column("version", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("input_schema", JSONB, nullable=False),
    Column("output_schema", JSONB, nullable=False),
    Column("concurrency", Integer, nullable=False),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("heartbeat_interval_s", Float, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("last_heartbeat", DateTime(timezone=True), nullable=False),
    Column("stopped_at", DateTime(timezone=True)),
    Column("tasks_completed", BigInteger, nullable=False, server_default=text("0")),
    Column("tasks_failed", BigInteger, nullable=False, server_default=text("0")),
    Column(
        "tasks_per_min",
        Float,
        nullable=False,
        server_default=text("0"),
        comment="results per minute over about the last minute",
    ),
)

Status = Literal["up", "stale", "stopped"]
STALE_AFTER_BEATS = 3
FORGET_AFTER = timedelta(days=1)  # stopped and stale rows


@dataclass(frozen=True, slots=True)
class Announcement:
    """What a worker says about one capability it runs."""

    capability: str
    instance: str
    version: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    concurrency: int
    host: str
    pid: int
    heartbeat_interval_s: float


@dataclass(frozen=True, slots=True)
class Counters:
    """A worker's results so far for one capability, and its recent rate."""

    completed: int = 0
    failed: int = 0
    per_min: float = 0.0


@dataclass(frozen=True, slots=True)
class AgentInstance:
    """A registry row as read, with the age of its heartbeat and its status."""

    capability: str
    instance: str
    version: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    concurrency: int
    host: str
    pid: int
    heartbeat_interval_s: float
    started_at: datetime
    last_heartbeat: datetime
    stopped_at: datetime | None
    heartbeat_age_s: float
    tasks_completed: int
    tasks_failed: int
    tasks_per_min: float

    @property
    def status(self) -> Status:
        """``stopped`` after a clean stop, ``stale`` when heartbeats stopped coming."""
        if self.stopped_at is not None:
            return "stopped"
        if self.heartbeat_age_s > STALE_AFTER_BEATS * self.heartbeat_interval_s:
            return "stale"
        return "up"

    @property
    def tasks_per_min_avg(self) -> float:
        """Results per minute since the worker started."""
        end = self.stopped_at or self.last_heartbeat
        minutes = (end - self.started_at).total_seconds() / 60
        done = self.tasks_completed + self.tasks_failed
        return done / minutes if minutes > 0 else 0.0


def announce(connection: Connection, *, announcement: Announcement, counters: Counters) -> None:
    """Insert or replace a worker's row (started now), and forget long-gone workers."""
    values = {
        "capability": announcement.capability,
        "instance": announcement.instance,
        "version": announcement.version,
        "description": announcement.description,
        "input_schema": announcement.input_schema,
        "output_schema": announcement.output_schema,
        "concurrency": announcement.concurrency,
        "host": announcement.host,
        "pid": announcement.pid,
        "heartbeat_interval_s": announcement.heartbeat_interval_s,
        "started_at": func.now(),
        "last_heartbeat": func.now(),
        "stopped_at": None,
        "tasks_completed": counters.completed,
        "tasks_failed": counters.failed,
        "tasks_per_min": counters.per_min,
    }
    statement = insert(agent_instances).values(values)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[agent_instances.c.capability, agent_instances.c.instance],
            set_={
                name: statement.excluded[name]
                for name in values
                if name not in ("capability", "instance")
            },
        )
    )
    connection.execute(
        delete(agent_instances).where(agent_instances.c.last_heartbeat < func.now() - FORGET_AFTER)
    )


def beat(
    connection: Connection,
    *,
    capability: str,
    instance: str,
    counters: Counters,
    stopped: bool = False,
) -> bool:
    """Record a heartbeat (and a clean stop); False if the row is gone (announce again)."""
    values: dict[str, Any] = {
        "last_heartbeat": func.now(),
        "tasks_completed": counters.completed,
        "tasks_failed": counters.failed,
        "tasks_per_min": 0.0 if stopped else counters.per_min,
    }
    if stopped:
        values["stopped_at"] = func.now()
    result = connection.execute(
        update(agent_instances)
        .where(
            agent_instances.c.capability == capability,
            agent_instances.c.instance == instance,
        )
        .values(values)
    )
    return result.rowcount == 1


def list_instances(
    connection: Connection, *, capability: str | None = None, include_stopped: bool = False
) -> list[AgentInstance]:
    """Registry rows by capability and instance; stopped workers only if asked."""
    age = func.extract("epoch", func.now() - agent_instances.c.last_heartbeat)
    query = select(agent_instances, age.label("heartbeat_age_s")).order_by(
        agent_instances.c.capability, agent_instances.c.instance
    )
    if capability is not None:
        query = query.where(agent_instances.c.capability == capability)
    if not include_stopped:
        query = query.where(agent_instances.c.stopped_at.is_(None))
    return [
        AgentInstance(**{**row._mapping, "heartbeat_age_s": float(row.heartbeat_age_s)})
        for row in connection.execute(query)
    ]
