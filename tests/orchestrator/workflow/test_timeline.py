"""A workflow's timeline (pure): the state's events and the audit trail's, in time order,
each named for a person reading it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.workflow.state import (
    Attempt,
    EscalationState,
    EscalationStatus,
    TaskError,
    TaskState,
    TaskStatus,
    WorkflowState,
    WorkflowStatus,
)
from orchestrator.workflow.timeline import timeline

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass(frozen=True)
class Entry:
    at: datetime
    actor: str
    action: str
    escalation_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Letter:
    id: int
    dead_lettered_at: datetime
    source_topic: str
    error_class: str | None
    task_id: str | None


def workflow() -> WorkflowState:
    draft = TaskState(
        id="w:draft",
        step="draft",
        capability="writer",
        status=TaskStatus.FAILED,
        max_attempts=2,
        attempt=2,
        attempts=(
            Attempt(1, at(2), at(3), "failed", TaskError("TimeoutError", "slow")),
            Attempt(2, at(4), at(6), "failed", TaskError("ValueError", "bad", False), "backup"),
        ),
    )
    escalation = EscalationState(
        id="e1",
        task_id="w:draft",
        step="draft",
        attempt=2,
        kind="fallback",
        reason="every attempt failed",
        status=EscalationStatus.RESOLVED,
        priority=2,
        group="editors",
        version=1,
        digest="d",
        content={},
        opened_at=at(6),
        due_at=at(600),
        warn_at=at(500),
    )
    return WorkflowState(
        id="w",
        type="support.ticket",
        status=WorkflowStatus.FAILED,
        input={},
        accepted_at=at(0),
        started_at=at(1),
        finished_at=at(9),
        reason="rejected",
        tasks={"draft": draft},
        escalations={"e1": escalation},
    )


def test_the_state_and_the_audit_trail_in_time_order() -> None:
    audit = [
        Entry(at(8), "rita", "decide", "e1", {"decision": "reject", "reason": "no"}),
        Entry(at(6), "waypost", "opened", "e1", {"reason": "every attempt failed"}),
        Entry(at(7), "rita", "claim", "e1"),
        Entry(at(10), "ada", "resume", None, {"step": "draft", "reason": "fixed"}),
    ]
    letters = [Letter(7, at(6.5), "tasks.writer", "ValueError", "w:draft")]

    events = timeline(workflow(), audit, letters)

    assert [(e.at, e.kind, e.title) for e in events] == [
        (at(0), "accepted", "Goal support.ticket accepted"),
        (at(1), "started", "Planned; the first steps run"),
        (at(2), "dispatched", "draft: attempt 1 sent to writer"),
        (at(3), "result", "draft: attempt 1 failed: TimeoutError: slow"),
        (at(4), "dispatched", "draft: attempt 2 sent to backup (fallback)"),
        (at(6), "result", "draft: attempt 2 failed: ValueError: bad"),
        (at(6), "escalation", "draft: escalation opened"),
        (at(6.5), "dead_letter", "Dead-lettered from tasks.writer: ValueError"),
        (at(7), "review", "draft: rita: claim"),
        (at(8), "decision", "draft: rita decided reject"),
        (at(9), "finished", "Workflow failed"),
        (at(10), "action", "draft: ada: resume"),
    ]
    decision = events[9]
    assert (decision.actor, decision.escalation_id, decision.step) == ("rita", "e1", "draft")
    assert decision.detail == {"decision": "reject", "reason": "no"}
    assert events[7].dead_letter_id == 7
    assert events[7].step == "draft"
    assert events[-2].detail == {"reason": "rejected"}


def test_a_goal_not_planned_yet_has_one_event() -> None:
    accepted = WorkflowState("w", "t", WorkflowStatus.ACCEPTED, {}, at(0))

    (event,) = timeline(accepted)

    assert (event.kind, event.title) == ("accepted", "Goal t accepted")
