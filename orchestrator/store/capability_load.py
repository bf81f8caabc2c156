"""What the capabilities are doing, read from the orchestrator's own tables: the backlog
of tasks sent to each (or waiting to be), and how the attempts that ended recently went.

The backlog counts tasks ``dispatched`` (sent, no result yet) and in ``retry_wait``
(waiting for their next attempt), and among those the ones waiting for a circuit
(``CircuitOpen``); both statuses have partial indexes, so this stays cheap however many
finished tasks there are. Recent attempts are read from the ``attempts`` of tasks changed
since the window began.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, DateTime, cast, func, select
from sqlalchemy.dialects.postgresql import JSONB

from orchestrator.store.tables import tasks, workflows
from orchestrator.workflow.state import TaskStatus
from orchestrator.workflow.transitions import CIRCUIT_OPEN


@dataclass(frozen=True, slots=True)
class Backlog:
    """A capability's unfinished work."""

    dispatched: int = 0  # sent; no result yet
    retry_wait: int = 0  # waiting for their next attempt (backoff or circuit)
    waiting_for_circuit: int = 0  # of retry_wait: refused by the capability's circuit

    @property
    def total(self) -> int:
        """Tasks sent or waiting to be sent."""
        return self.dispatched + self.retry_wait


@dataclass(frozen=True, slots=True)
class AttemptCount:
    """How many attempts of one step ended one way since the window began. ``capability``
    is the fallback an attempt went to, None for the step's own capability."""

    workflow_type: str
    step: str
    task_capability: str
    capability: str | None
    outcome: str
    count: int


def backlog(conn: Connection) -> dict[str, Backlog]:
    """The backlog of every capability that has one."""
    waiting = tasks.c.error["type"].astext == CIRCUIT_OPEN
    rows = conn.execute(
        select(
            tasks.c.capability,
            func.count().filter(tasks.c.status == TaskStatus.DISPATCHED.value).label("sent"),
            func.count().filter(tasks.c.status == TaskStatus.RETRY_WAIT.value).label("waiting"),
            func.count()
            .filter(tasks.c.status == TaskStatus.RETRY_WAIT.value, waiting)
            .label("circuit"),
        )
        .where(tasks.c.status.in_([TaskStatus.DISPATCHED.value, TaskStatus.RETRY_WAIT.value]))
        .group_by(tasks.c.capability)
    ).all()
    return {row.capability: Backlog(row.sent, row.waiting, row.circuit) for row in rows}


def attempts_since(conn: Connection, *, since: datetime) -> list[AttemptCount]:
    """Attempts that ended at or after ``since``, counted by workflow type, step,
    capability and outcome."""
    attempt = func.jsonb_array_elements(tasks.c.attempts, type_=JSONB).column_valued(
        "attempt_entry", joins_implicitly=True
    )
    finished = cast(attempt["finished_at"].astext, DateTime(timezone=True))
    fallback = attempt["capability"].astext.label("fallback")
    outcome = attempt["outcome"].astext.label("outcome")
    # Grouped by the labels: the same expression twice would bind its key twice.
    grouping = (
        workflows.c.type,
        tasks.c.step,
        tasks.c.capability,
        fallback,
        outcome,
    )
    rows = conn.execute(
        select(*grouping, func.count().label("n"))
        .select_from(tasks.join(workflows, workflows.c.id == tasks.c.workflow_id))
        .where(tasks.c.updated_at >= since, finished >= since)
        .group_by(*grouping)
    ).all()
    return [
        AttemptCount(row.type, row.step, row.capability, row.fallback, row.outcome, row.n)
        for row in rows
        if row.outcome is not None
    ]
