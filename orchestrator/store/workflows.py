"""Workflow and task rows: every query the orchestrator and the API run on them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, select

from orchestrator.store import statements as sql
from orchestrator.store.rows import (
    arrays,
    escalation_fields,
    escalation_state,
    task_fields,
    task_state,
    to_json,
    workflow_fields,
    workflow_state,
)
from orchestrator.store.tables import escalations, tasks, workflows
from orchestrator.store.workflow_pages import Cursor, WorkflowFilter, WorkflowPage
from orchestrator.store.workflow_pages import WorkflowSummary as WorkflowSummary
from orchestrator.store.workflow_search import search
from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
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


# A page of the listing (orchestrator/store/workflow_search.py has every filter and sort).
Page = WorkflowPage


def insert_accepted(conn: Connection, *, new: Sequence[NewWorkflow]) -> set[str]:
    """Record goals as accepted workflows; returns the ids that were not there before."""
    if not new:
        return set()
    rows = conn.exec_driver_sql(
        sql.INSERT_ACCEPTED,
        {
            "id": [w.id for w in new],
            "type": [w.type for w in new],
            "input": [to_json(dict(w.input)) for w in new],
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
        sql.INSERT_PLANNED,
        {
            "now": now,
            **arrays(
                [
                    {
                        "id": state.id,
                        "type": state.type,
                        "input": to_json(dict(state.input)),
                        "traceparent": state.traceparent,
                        "tracestate": state.tracestate,
                        "accepted_at": state.accepted_at,
                        **workflow_fields(state),
                    }
                    for state in states
                ]
            ),
        },
    )
    inserted = {row.id for row in rows}
    new_tasks = [
        {"id": task.id, "workflow_id": state.id, "position": position, **task_fields(task)}
        for state in states
        if state.id in inserted
        for position, task in enumerate(state.tasks.values())
    ]
    if new_tasks:
        conn.exec_driver_sql(sql.INSERT_TASKS, {"now": now, **arrays(new_tasks)})
    return inserted


def lock(
    conn: Connection, *, ids: Iterable[str], skip_locked: bool = False
) -> dict[str, WorkflowState]:
    """Load workflows for update (row locks held until the transaction ends)."""
    wanted = sorted(set(ids))  # a fixed lock order avoids deadlocks between batches
    if not wanted:
        return {}
    statement = sql.LOCK_SKIP if skip_locked else sql.LOCK
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
    embeddings: Mapping[str, str] | None = None,
) -> None:
    """Write what changed between two snapshots of the same workflows (one statement per
    table and kind of change, whatever the number of rows)."""
    changed_workflows: list[dict[str, Any]] = []
    new_tasks: list[dict[str, Any]] = []
    changed_tasks: list[dict[str, Any]] = []
    new_escalations: list[dict[str, Any]] = []
    changed_escalations: list[dict[str, Any]] = []
    for workflow_id, state in after.items():
        old = before.get(workflow_id)
        if old is not None and old == state:
            continue
        fields = workflow_fields(state)
        if old is None or workflow_fields(old) != fields:
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
                        **task_fields(task),
                    }
                )
            elif previous != task:
                changed_tasks.append({"id": task.id, **task_fields(task)})
        old_escalations = old.escalations if old is not None else {}
        for escalation_id, escalation in state.escalations.items():
            earlier = old_escalations.get(escalation_id)
            if earlier is None:
                new_escalations.append(
                    _new_escalation(state, escalation, (embeddings or {}).get(escalation_id))
                )
            elif earlier != escalation:
                changed_escalations.append({"id": escalation_id, **escalation_fields(escalation)})
    if changed_workflows:
        conn.exec_driver_sql(sql.UPDATE_WORKFLOWS, {"now": now, **arrays(changed_workflows)})
    if new_tasks:
        conn.exec_driver_sql(sql.INSERT_TASKS, {"now": now, **arrays(new_tasks)})
    if changed_tasks:
        conn.exec_driver_sql(sql.UPDATE_TASKS, {"now": now, **arrays(changed_tasks)})
    if new_escalations:
        conn.exec_driver_sql(sql.INSERT_ESCALATIONS, {"now": now, **arrays(new_escalations)})
    if changed_escalations:
        conn.exec_driver_sql(sql.UPDATE_ESCALATIONS, {"now": now, **arrays(changed_escalations)})


def _new_escalation(
    state: WorkflowState, escalation: EscalationState, embedding: str | None
) -> dict[str, Any]:
    return {
        "id": escalation.id,
        "workflow_id": state.id,
        "task_id": escalation.task_id,
        "step": escalation.step,
        "attempt": escalation.attempt,
        "goal_type": state.type,
        "capability": state.capability_of(escalation),
        "kind": escalation.kind,
        "reason": escalation.reason,
        "opened_at": escalation.opened_at,
        "embedding": embedding,
        **escalation_fields(escalation),
    }


def lock_due(
    conn: Connection, *, now: datetime, limit: int, decision_grace_s: float = 10.0
) -> dict[str, WorkflowState]:
    """Workflows with a timer due, locked (skipping ones locked now): a lease expired, a
    retry due, a review deadline passed, or a reviewer's decision not applied in time."""
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
    review_due = (
        select(escalations.c.workflow_id)
        .where(
            escalations.c.status == EscalationStatus.PENDING.value,
            escalations.c.overdue.is_(False),
            escalations.c.due_at <= now,
        )
        .limit(limit)
    )
    decision_unapplied = (
        select(escalations.c.workflow_id)
        .where(
            escalations.c.status == EscalationStatus.DECIDED.value,
            escalations.c.updated_at <= now - timedelta(seconds=decision_grace_s),
        )
        .limit(limit)
    )
    union = lease_due.union(retry_due, review_due, decision_unapplied)
    ids = {row.workflow_id for row in conn.execute(union)}
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
    """Workflows newest first, filtered; pass ``next_cursor`` back for the next page
    (``workflow_search.search`` has every filter and sort)."""
    filters = WorkflowFilter(
        statuses=(status,) if status is not None else (), goal_type=goal_type, goal_id=goal_id
    )
    return search(conn, filters=filters, limit=limit, cursor=cursor)


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a next-page cursor of ``list_page`` stands for; ValueError if it is
    not one."""
    position = Cursor.decode(cursor)
    if position.value is None or position.before:
        raise ValueError(f"invalid cursor {cursor!r}: not a next-page cursor of list_page")
    return position.value, position.id


def _with_tasks(conn: Connection, rows: Sequence[Row[Any]]) -> dict[str, WorkflowState]:
    if not rows:
        return {}
    ids = [r.id for r in rows]
    task_rows = conn.exec_driver_sql(sql.TASKS_OF, {"ids": ids}).all()
    escalation_rows = conn.exec_driver_sql(sql.ESCALATIONS_OF, {"ids": ids}).all()
    by_workflow: dict[str, dict[str, TaskState]] = {r.id: {} for r in rows}
    for row in task_rows:
        by_workflow[row.workflow_id][row.step] = task_state(row)
    escalations: dict[str, dict[str, EscalationState]] = {r.id: {} for r in rows}
    for row in escalation_rows:
        escalations[row.workflow_id][row.id] = escalation_state(row)
    return {r.id: workflow_state(r, by_workflow[r.id], escalations[r.id]) for r in rows}
