"""Accepting goals from outside Kafka (the HTTP API).

The goal is stored as an accepted workflow together with its goal.submitted event in
one transaction, so a 202 answer means the goal is durable even if the broker then loses
the event: the reconciler plans accepted goals that nobody planned in time. The caller
publishes the returned outbox rows after commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from orchestrator.publishing.outbox import OutboxRows
from orchestrator.publishing.records import Outgoing
from orchestrator.store import outbox
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.workflows import NewWorkflow


@dataclass(frozen=True, slots=True)
class GoalSubmission:
    """A goal as a client submits it."""

    goal_id: str
    type: str
    input: Mapping[str, Any]
    traceparent: str | None
    source: str = "waypost/http"


@dataclass(frozen=True, slots=True)
class Accepted:
    """The workflow a goal became; ``created`` is False for a repeated goal id."""

    workflow_id: str
    created: bool
    outbox: OutboxRows = ()


def submit(
    conn: Connection,
    *,
    goal: GoalSubmission,
    outgoing: Outgoing,
    now: datetime,
) -> Accepted:
    """Record a goal and queue its event; the same goal id twice makes one workflow."""
    created = workflow_rows.insert_accepted(
        conn,
        new=[
            NewWorkflow(
                id=goal.goal_id,
                type=goal.type,
                input=goal.input,
                accepted_at=now,
                traceparent=goal.traceparent,
            )
        ],
    )
    if created:
        record = outgoing.goal(
            goal_id=goal.goal_id,
            goal_type=goal.type,
            goal_input=goal.input,
            traceparent=goal.traceparent,
            source=goal.source,
        )
        ids = outbox.enqueue(conn, records=[record])
        return Accepted(goal.goal_id, True, [(ids[0], record)])
    return Accepted(goal.goal_id, False)
