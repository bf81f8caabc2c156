"""Failed workflows made the way the orchestrator makes them (a goal planned, then an
agent's failure that retrying cannot fix applied), for tests of the operations on them:
retry a failed step, resume from a step."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from orchestrator.service.applier import Applier
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.workflows import NewWorkflow
from orchestrator.workflow.messages import TaskAttemptFailed
from orchestrator.workflow.state import TaskError
from waypost.events import utcnow


def failed_workflow(
    engine: Engine,
    applier: Applier,
    workflow_id: str,
    *,
    goal_type: str,
    goal_input: Mapping[str, Any],
    step: str,
    at: datetime | None = None,
) -> str:
    """Plan a goal, then fail ``step``'s first attempt in a way retrying cannot fix: the
    workflow fails on it. Returns the workflow id."""
    at = at or utcnow()
    goal = NewWorkflow(workflow_id, goal_type, dict(goal_input), at)
    with engine.begin() as conn:
        applier.plan_new(conn, goals=[goal], now=at)
    with engine.begin() as conn:
        states = workflow_rows.lock(conn, ids=[workflow_id])
        task = states[workflow_id].tasks[step]
        failure = TaskAttemptFailed(
            task.id, task.attempt, TaskError("ValueError", "bad input", retryable=False)
        )
        applied = applier.apply(conn, states=states, inputs=[(workflow_id, failure)], now=at)
        assert applied.applied == 1, applied.notes
        assert states[workflow_id].status.value == "failed", states[workflow_id]
    return workflow_id
