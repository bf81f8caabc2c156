"""Workflow and task rows: every query the orchestrator and the API run on them."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Row, select, tuple_

from orchestrator.store.tables import tasks, workflows
from orchestrator.workflow.state import (
    Attempt,
    TaskError,
    TaskState,
    TaskStatus,
    WorkflowState,
    WorkflowStatus,
)


@dataclass(frozen=True, slots=True)
class NewWorkflow:
    """A goal to record as an accepted workflow."""

    id: str
    type: str
    input: Mapping[str, Any]
    accepted_at: datetime
    traceparent: str | None = None
    tracestate: str | None = None


@dataclass(frozen=True, slots=True)
class WorkflowSummary:
    """One row of a workflow listing."""

    id: str
    type: str
    status: WorkflowStatus
    accepted_at: datetime
    finished_at: datetime | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Page:
    """A page of workflows, newest first, and the cursor of the next page."""

    items: list[WorkflowSummary]
    next_cursor: str | None


def insert_accepted(conn: Connection, *, new: Sequence[NewWorkflow]) -> set[str]:
    """Record goals as accepted workflows; returns the ids that were not there before."""
    if not new:
        return set()
    rows = conn.exec_driver_sql(
        _INSERT_ACCEPTED,
        {
            "id": [w.id for w in new],
            "type": [w.type for w in new],
            "input": [_json(dict(w.input)) for w in new],
            "traceparent": [w.traceparent for w in new],
            "tracestate": [w.tracestate for w in new],
            "accepted_at": [w.accepted_at for w in new],
        },
    )
    return {row.id for row in rows}


def insert_planned(conn: Connection, *, states: Sequence[WorkflowState], now: datetime) -> set[str]:
    """Insert workflows planned in memory, with their tasks, unless their id exists.

    Returns the ids inserted; an id that already existed (a repeated goal, or one
    accepted over HTTP and not yet planned) is left untouched for the caller to handle.
    """
    if not states:
        return set()
    rows = conn.exec_driver_sql(
        _INSERT_PLANNED,
        {
            "now": now,
            **_arrays(
                [
                    {
                        "id": state.id,
                        "type": state.type,
                        "input": _json(dict(state.input)),
                        "traceparent": state.traceparent,
                        "tracestate": state.tracestate,
                        "accepted_at": state.accepted_at,
                        **_workflow_fields(state),
                    }
                    for state in states
                ]
            ),
        },
    )
    inserted = {row.id for row in rows}
    new_tasks = [
        {"id": task.id, "workflow_id": state.id, "position": position, **_task_fields(task)}
        for state in states
        if state.id in inserted
        for position, task in enumerate(state.tasks.values())
    ]
    if new_tasks:
        conn.exec_driver_sql(_INSERT_TASKS, {"now": now, **_arrays(new_tasks)})
    return inserted


def lock(
    conn: Connection, *, ids: Iterable[str], skip_locked: bool = False
) -> dict[str, WorkflowState]:
    """Load workflows for update (row locks held until the transaction ends)."""
    wanted = sorted(set(ids))  # a fixed lock order avoids deadlocks between batches
    if not wanted:
        return {}
    statement = _LOCK_SKIP if skip_locked else _LOCK
    return _with_tasks(conn, conn.exec_driver_sql(statement, {"ids": wanted}).all())


def get(conn: Connection, *, workflow_id: str) -> WorkflowState | None:
    """One workflow with its tasks, or None."""
    row = conn.execute(select(workflows).where(workflows.c.id == workflow_id)).first()
    return _with_tasks(conn, [row])[workflow_id] if row is not None else None


def count_by_status(conn: Connection, *, ids: Sequence[str]) -> dict[str, int]:
    """How many of these workflows are in each status."""
    counts: dict[str, int] = {}
    for row in conn.execute(select(workflows.c.status).where(workflows.c.id.in_(list(ids)))):
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


def save(
    conn: Connection,
    *,
    before: Mapping[str, WorkflowState],
    after: Mapping[str, WorkflowState],
    now: datetime,
) -> None:
    """Write what changed between two snapshots of the same workflows (one statement per
    table and kind of change, whatever the number of rows)."""
    changed_workflows: list[dict[str, Any]] = []
    new_tasks: list[dict[str, Any]] = []
    changed_tasks: list[dict[str, Any]] = []
    for workflow_id, state in after.items():
        old = before.get(workflow_id)
        if old is not None and old == state:
            continue
        fields = _workflow_fields(state)
        if old is None or _workflow_fields(old) != fields:
            changed_workflows.append({"id": workflow_id, **fields})
        old_tasks = old.tasks if old is not None else {}
        for position, (name, task) in enumerate(state.tasks.items()):
            previous = old_tasks.get(name)
            if previous is None:
                new_tasks.append(
                    {
                        "id": task.id,
                        "workflow_id": workflow_id,
                        "position": position,
                        **_task_fields(task),
                    }
                )
            elif previous != task:
                changed_tasks.append({"id": task.id, **_task_fields(task)})
    if changed_workflows:
        conn.exec_driver_sql(_UPDATE_WORKFLOWS, {"now": now, **_arrays(changed_workflows)})
    if new_tasks:
        conn.exec_driver_sql(_INSERT_TASKS, {"now": now, **_arrays(new_tasks)})
    if changed_tasks:
        conn.exec_driver_sql(_UPDATE_TASKS, {"now": now, **_arrays(changed_tasks)})


def lock_due(conn: Connection, *, now: datetime, limit: int) -> dict[str, WorkflowState]:
    """Workflows with a lease expired or a retry due, locked (skipping ones locked now)."""
    lease_due = (
        select(tasks.c.workflow_id)
        .where(tasks.c.status == TaskStatus.DISPATCHED.value, tasks.c.lease_expires_at <= now)
        .limit(limit)
    )
    retry_due = (
        select(tasks.c.workflow_id)
        .where(tasks.c.status == TaskStatus.RETRY_WAIT.value, tasks.c.next_attempt_at <= now)
        .limit(limit)
    )
    ids = {row.workflow_id for row in conn.execute(lease_due.union(retry_due))}
    return lock(conn, ids=ids, skip_locked=True)


def lock_stale_accepted(
    conn: Connection, *, accepted_before: datetime, limit: int
) -> dict[str, WorkflowState]:
    """Accepted goals nobody planned since ``accepted_before``, locked."""
    rows = conn.execute(
        select(workflows)
        .where(
            workflows.c.status == WorkflowStatus.ACCEPTED.value,
            workflows.c.accepted_at <= accepted_before,
        )
        .order_by(workflows.c.accepted_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    return _with_tasks(conn, rows)


def list_page(
    conn: Connection,
    *,
    status: str | None = None,
    goal_type: str | None = None,
    goal_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """Workflows newest first, filtered; pass ``next_cursor`` back for the next page."""
    query = select(
        workflows.c.id,
        workflows.c.type,
        workflows.c.status,
        workflows.c.accepted_at,
        workflows.c.finished_at,
        workflows.c.reason,
    )
    if status is not None:
        query = query.where(workflows.c.status == status)
    if goal_type is not None:
        query = query.where(workflows.c.type == goal_type)
    if goal_id is not None:
        query = query.where(workflows.c.id == goal_id)
    if cursor is not None:
        accepted_at, last_id = decode_cursor(cursor)
        query = query.where(
            tuple_(workflows.c.accepted_at, workflows.c.id) < tuple_(accepted_at, last_id)
        )
    rows = conn.execute(
        query.order_by(workflows.c.accepted_at.desc(), workflows.c.id.desc()).limit(limit + 1)
    ).all()
    items = [
        WorkflowSummary(
            r.id, r.type, WorkflowStatus(r.status), r.accepted_at, r.finished_at, r.reason
        )
        for r in rows[:limit]
    ]
    next_cursor = _encode_cursor(items[-1]) if len(rows) > limit else None
    return Page(items, next_cursor)


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor stands for; ValueError if it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        moment, workflow_id = text.split("|", 1)
        if "\x00" in workflow_id:
            raise ValueError("NUL in cursor")
        return datetime.fromisoformat(moment), workflow_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc


def _encode_cursor(item: WorkflowSummary) -> str:
    return base64.urlsafe_b64encode(f"{item.accepted_at.isoformat()}|{item.id}".encode()).decode()


def _workflow_fields(state: WorkflowState) -> dict[str, Any]:
    return {
        "status": state.status.value,
        "output": _json(state.output),
        "reason": state.reason,
        "failed_step": state.failed_step,
        "error": _json(state.error.as_dict() if state.error is not None else None),
        "started_at": state.started_at,
        "finished_at": state.finished_at,
    }


def _task_fields(task: TaskState) -> dict[str, Any]:
    return {
        "step": task.step,
        "capability": task.capability,
        "status": task.status.value,
        "attempt": task.attempt,
        "max_attempts": task.max_attempts,
        "input": _json(task.input),
        "output": _json(task.output),
        "confidence": task.confidence,
        "reasoning": _json(list(task.reasoning)),
        "usage": _json(task.usage),
        "agent": _json(task.agent),
        "error": _json(task.error.as_dict() if task.error is not None else None),
        "attempts": _json([_attempt_json(a) for a in task.attempts]),
        "lease_expires_at": task.lease_expires_at,
        "next_attempt_at": task.next_attempt_at,
        "finished_at": task.finished_at,
    }


def _attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "dispatched_at": attempt.dispatched_at.isoformat(),
        "finished_at": attempt.finished_at.isoformat() if attempt.finished_at else None,
        "outcome": attempt.outcome,
        "error": attempt.error.as_dict() if attempt.error else None,
    }


def _with_tasks(conn: Connection, rows: Sequence[Row[Any]]) -> dict[str, WorkflowState]:
    if not rows:
        return {}
    task_rows = conn.exec_driver_sql(_TASKS_OF, {"ids": [r.id for r in rows]}).all()
    by_workflow: dict[str, dict[str, TaskState]] = {r.id: {} for r in rows}
    for row in task_rows:
        by_workflow[row.workflow_id][row.step] = _task(row)
    return {r.id: _workflow(r, by_workflow[r.id]) for r in rows}


def _workflow(row: Row[Any], task_states: dict[str, TaskState]) -> WorkflowState:
    return WorkflowState(
        id=row.id,
        type=row.type,
        status=WorkflowStatus(row.status),
        input=row.input,
        accepted_at=row.accepted_at,
        tasks=task_states,
        output=row.output,
        reason=row.reason,
        failed_step=row.failed_step,
        error=_error(row.error),
        started_at=row.started_at,
        finished_at=row.finished_at,
        traceparent=row.traceparent,
        tracestate=row.tracestate,
    )


def _task(row: Row[Any]) -> TaskState:
    return TaskState(
        id=row.id,
        step=row.step,
        capability=row.capability,
        status=TaskStatus(row.status),
        max_attempts=row.max_attempts,
        attempt=row.attempt,
        input=row.input,
        output=row.output,
        confidence=row.confidence,
        reasoning=tuple(row.reasoning or ()),
        usage=row.usage,
        agent=row.agent,
        error=_error(row.error),
        lease_expires_at=row.lease_expires_at,
        next_attempt_at=row.next_attempt_at,
        finished_at=row.finished_at,
        attempts=tuple(
            Attempt(
                number=a["number"],
                dispatched_at=datetime.fromisoformat(a["dispatched_at"]),
                finished_at=datetime.fromisoformat(a["finished_at"]) if a["finished_at"] else None,
                outcome=a["outcome"],
                error=_error(a["error"]),
            )
            for a in row.attempts
        ),
    )


def _error(data: Mapping[str, Any] | None) -> TaskError | None:
    if data is None:
        return None
    return TaskError(data["type"], data["message"], data.get("retryable", True))


# --- bulk statements -----------------------------------------------------------------
# Rows travel as one array per column through unnest(): the SQL text is the same for any
# batch size, so it is parsed once and prepared by the server, and a batch costs one
# round trip. Parameters use psycopg's binary format (%(name)b, run with
# exec_driver_sql): text-format arrays cost about six times more to build, because every
# quote and backslash of every JSON value is escaped. JSON columns travel as text and are
# cast to jsonb.

_WORKFLOW_COLUMNS = {
    "status": "text",
    "output": "jsonb",
    "reason": "text",
    "failed_step": "text",
    "error": "jsonb",
    "started_at": "timestamptz",
    "finished_at": "timestamptz",
}
_TASK_COLUMNS = {
    "step": "text",
    "capability": "text",
    "status": "text",
    "attempt": "int4",
    "max_attempts": "int4",
    "input": "jsonb",
    "output": "jsonb",
    "confidence": "float8",
    "reasoning": "jsonb",
    "usage": "jsonb",
    "agent": "jsonb",
    "error": "jsonb",
    "attempts": "jsonb",
    "lease_expires_at": "timestamptz",
    "next_attempt_at": "timestamptz",
    "finished_at": "timestamptz",
}


def _unnest(columns: Mapping[str, str]) -> str:
    arrays = ", ".join(
        f"CAST(%({name})b AS {'text' if kind == 'jsonb' else kind}[])"
        for name, kind in columns.items()
    )
    return f"unnest({arrays}) AS v({', '.join(columns)})"


def _value(name: str, kind: str) -> str:
    return f"v.{name}::jsonb" if kind == "jsonb" else f"v.{name}"


_INSERT_ACCEPTED = (
    "INSERT INTO workflows (id, type, status, input, traceparent, tracestate, accepted_at, "
    "updated_at) SELECT v.id, v.type, 'accepted', v.input::jsonb, v.traceparent, v.tracestate, "
    "v.accepted_at, v.accepted_at FROM "
    + _unnest(
        {
            "id": "text",
            "type": "text",
            "input": "jsonb",
            "traceparent": "text",
            "tracestate": "text",
            "accepted_at": "timestamptz",
        }
    )
    + " ON CONFLICT (id) DO NOTHING RETURNING id"
)
_NEW_WORKFLOW_COLUMNS = {
    "id": "text",
    "type": "text",
    "input": "jsonb",
    "traceparent": "text",
    "tracestate": "text",
    "accepted_at": "timestamptz",
    **_WORKFLOW_COLUMNS,
}
_INSERT_PLANNED = (
    "INSERT INTO workflows ("
    + ", ".join(_NEW_WORKFLOW_COLUMNS)
    + ", updated_at) SELECT "
    + ", ".join(_value(n, k) for n, k in _NEW_WORKFLOW_COLUMNS.items())
    + ", %(now)b FROM "
    + _unnest(_NEW_WORKFLOW_COLUMNS)
    + " ON CONFLICT (id) DO NOTHING RETURNING id"
)
_LOCK = "SELECT * FROM workflows WHERE id = ANY(CAST(%(ids)b AS text[])) ORDER BY id FOR UPDATE"
_LOCK_SKIP = (
    "SELECT * FROM workflows WHERE id = ANY(CAST(%(ids)b AS text[])) ORDER BY id "
    "FOR UPDATE SKIP LOCKED"
)
_TASKS_OF = (
    "SELECT * FROM tasks WHERE workflow_id = ANY(CAST(%(ids)b AS text[])) "
    "ORDER BY workflow_id, position"
)
_UPDATE_WORKFLOWS = (
    "UPDATE workflows AS w SET "
    + ", ".join(f"{n} = {_value(n, k)}" for n, k in _WORKFLOW_COLUMNS.items())
    + ", updated_at = %(now)b FROM "
    + _unnest({"id": "text", **_WORKFLOW_COLUMNS})
    + " WHERE w.id = v.id"
)
_INSERT_TASKS = (
    "INSERT INTO tasks (id, workflow_id, position, "
    + ", ".join(_TASK_COLUMNS)
    + ", updated_at) SELECT v.id, v.workflow_id, v.position, "
    + ", ".join(_value(n, k) for n, k in _TASK_COLUMNS.items())
    + ", %(now)b FROM "
    + _unnest({"id": "text", "workflow_id": "text", "position": "int4", **_TASK_COLUMNS})
)
_UPDATE_TASKS = (
    "UPDATE tasks AS t SET "
    + ", ".join(f"{n} = {_value(n, k)}" for n, k in _TASK_COLUMNS.items())
    + ", updated_at = %(now)b FROM "
    + _unnest({"id": "text", **_TASK_COLUMNS})
    + " WHERE t.id = v.id"
)


def _arrays(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Column-wise lists of row dicts (all rows have the same keys)."""
    return {name: [row[name] for row in rows] for name in rows[0]}


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()
