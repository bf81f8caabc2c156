"""The bulk statements of the workflow store.

Rows travel as one array per column through unnest(): the SQL text is the same for any
batch size, so it is parsed once and prepared by the server, and a batch costs one round
trip. Parameters use psycopg's binary format (%(name)b, run with exec_driver_sql):
text-format arrays cost about six times more to build, because every quote and
backslash of every JSON value is escaped. JSON columns travel as text, cast to jsonb.
"""

from __future__ import annotations

from collections.abc import Mapping

WORKFLOW_COLUMNS = {
    "status": "text",
    "output": "jsonb",
    "reason": "text",
    "failed_step": "text",
    "error": "jsonb",
    "started_at": "timestamptz",
    "finished_at": "timestamptz",
    "playbook_digest": "text",
    "dead_letter": "jsonb",
}
TASK_COLUMNS = {
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
    "proposal": "jsonb",
    "first_valid_attempt": "int4",
    "lease_expires_at": "timestamptz",
    "next_attempt_at": "timestamptz",
    "finished_at": "timestamptz",
}


_AS_TEXT = {"jsonb", "vector"}  # travel as text, cast on arrival


def _unnest(columns: Mapping[str, str]) -> str:
    arrays = ", ".join(
        f"CAST(%({name})b AS {'text' if kind in _AS_TEXT else kind}[])"
        for name, kind in columns.items()
    )
    return f"unnest({arrays}) AS v({', '.join(columns)})"


def _value(name: str, kind: str) -> str:
    return f"v.{name}::{kind}" if kind in _AS_TEXT else f"v.{name}"


INSERT_ACCEPTED = (
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
_NEWWORKFLOW_COLUMNS = {
    "id": "text",
    "type": "text",
    "input": "jsonb",
    "traceparent": "text",
    "tracestate": "text",
    "accepted_at": "timestamptz",
    **WORKFLOW_COLUMNS,
}
INSERT_PLANNED = (
    "INSERT INTO workflows ("
    + ", ".join(_NEWWORKFLOW_COLUMNS)
    + ", updated_at) SELECT "
    + ", ".join(_value(n, k) for n, k in _NEWWORKFLOW_COLUMNS.items())
    + ", %(now)b FROM "
    + _unnest(_NEWWORKFLOW_COLUMNS)
    + " ON CONFLICT (id) DO NOTHING RETURNING id"
)
LOCK = "SELECT * FROM workflows WHERE id = ANY(CAST(%(ids)b AS text[])) ORDER BY id FOR UPDATE"
LOCK_SKIP = (
    "SELECT * FROM workflows WHERE id = ANY(CAST(%(ids)b AS text[])) ORDER BY id "
    "FOR UPDATE SKIP LOCKED"
)
TASKS_OF = (
    "SELECT * FROM tasks WHERE workflow_id = ANY(CAST(%(ids)b AS text[])) "
    "ORDER BY workflow_id, position"
)
UPDATE_WORKFLOWS = (
    "UPDATE workflows AS w SET "
    + ", ".join(f"{n} = {_value(n, k)}" for n, k in WORKFLOW_COLUMNS.items())
    + ", updated_at = %(now)b FROM "
    + _unnest({"id": "text", **WORKFLOW_COLUMNS})
    + " WHERE w.id = v.id"
)
INSERT_TASKS = (
    "INSERT INTO tasks (id, workflow_id, position, "
    + ", ".join(TASK_COLUMNS)
    + ", updated_at) SELECT v.id, v.workflow_id, v.position, "
    + ", ".join(_value(n, k) for n, k in TASK_COLUMNS.items())
    + ", %(now)b FROM "
    + _unnest({"id": "text", "workflow_id": "text", "position": "int4", **TASK_COLUMNS})
)
UPDATE_TASKS = (
    "UPDATE tasks AS t SET "
    + ", ".join(f"{n} = {_value(n, k)}" for n, k in TASK_COLUMNS.items())
    + ", updated_at = %(now)b FROM "
    + _unnest({"id": "text", **TASK_COLUMNS})
    + " WHERE t.id = v.id"
)

ESCALATION_COLUMNS = {
    "status": "text",
    "priority": "int4",
    "group_name": "text",
    "assignee": "text",
    "claimed_at": "timestamptz",
    "version": "int4",
    "digest": "text",
    "content": "jsonb",
    "due_at": "timestamptz",
    "warn_at": "timestamptz",
    "overdue": "bool",
    "decision": "jsonb",
    "resolved_at": "timestamptz",
    "required_approvals": "int4",
    "approvals": "jsonb",
}
NEW_ESCALATION_COLUMNS = {
    "id": "text",
    "workflow_id": "text",
    "task_id": "text",
    "step": "text",
    "attempt": "int4",
    "goal_type": "text",
    "capability": "text",
    "kind": "text",
    "reason": "text",
    "opened_at": "timestamptz",
    "embedding": "vector",
    **ESCALATION_COLUMNS,
}
INSERT_ESCALATIONS = (
    "INSERT INTO escalations ("
    + ", ".join(NEW_ESCALATION_COLUMNS)
    + ", updated_at) SELECT "
    + ", ".join(_value(n, k) for n, k in NEW_ESCALATION_COLUMNS.items())
    + ", %(now)b FROM "
    + _unnest(NEW_ESCALATION_COLUMNS)
)
UPDATE_ESCALATIONS = (
    "UPDATE escalations AS e SET "
    + ", ".join(f"{n} = {_value(n, k)}" for n, k in ESCALATION_COLUMNS.items())
    + ", updated_at = %(now)b FROM "
    + _unnest({"id": "text", **ESCALATION_COLUMNS})
    + " WHERE e.id = v.id"
)
ESCALATIONS_OF = (
    "SELECT id, workflow_id, task_id, step, attempt, kind, reason, opened_at, "
    + ", ".join(ESCALATION_COLUMNS)
    + " FROM escalations WHERE workflow_id = ANY(CAST(%(ids)b AS text[])) ORDER BY opened_at"
)
