"""What the metrics count, read off one applied decision (pure: no clock, no I/O).

The applier collects these while it applies inputs; the caller hands them to the
metrics once the transaction committed, so a rolled-back batch counts nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from orchestrator.workflow.messages import (
    AnnounceTaskEscalated,
    AnnounceWorkflowCompleted,
    AnnounceWorkflowFailed,
    DeadLetterTask,
    Decision,
    DispatchTask,
    Input,
    LeaseExpired,
    TaskAttemptFailed,
    TaskSucceeded,
)
from orchestrator.workflow.state import TaskState, WorkflowState


@dataclass(frozen=True, slots=True)
class Observation:
    """One countable thing: ``what`` happened to ``capability`` (a task's) or ``type``
    (a workflow's), taking ``seconds`` when that is known."""

    # dispatched | redispatched (a lease ran out) | completed | failed | dead_lettered |
    # escalated | workflow_completed | workflow_failed | plan_asked (the LLM planner)
    what: str
    label: str
    seconds: float | None = None
    detail: str | None = None  # the escalation's kind, a plan's outcome
    tokens: int = 0  # a plan's tokens


class Observer(Protocol):
    """Counts observations (the orchestrator's metrics)."""

    def observe(self, observations: Sequence[Observation]) -> None:
        """Count what a committed transaction did."""


class _Nobody:
    def observe(self, observations: Sequence[Observation]) -> None:
        """Count nothing."""


NO_OBSERVER: Observer = _Nobody()


def observe(
    before: WorkflowState, event: Input, decision: Decision, now: datetime
) -> list[Observation]:
    """Observations of one applied decision."""
    found: list[Observation] = []
    if isinstance(event, TaskSucceeded | TaskAttemptFailed):
        task = _task(before, event.task_id)
        if task is not None:
            what = "completed" if isinstance(event, TaskSucceeded) else "failed"
            found.append(Observation(what, task.capability, _since_dispatch(task, event, now)))
    lease_ran_out = isinstance(event, LeaseExpired)
    for command in decision.commands:
        if isinstance(command, DispatchTask):
            what = "redispatched" if lease_ran_out else "dispatched"
            found.append(Observation(what, command.task.capability))
        elif isinstance(command, DeadLetterTask):
            found.append(Observation("dead_lettered", command.dispatch.task.capability))
        elif isinstance(command, AnnounceTaskEscalated):
            escalation = command.escalation
            capability = decision.state.capability_of(escalation)
            found.append(Observation("escalated", capability, detail=escalation.kind))
        elif isinstance(command, AnnounceWorkflowCompleted | AnnounceWorkflowFailed):
            what = (
                "workflow_completed"
                if isinstance(command, AnnounceWorkflowCompleted)
                else "workflow_failed"
            )
            seconds = max(0.0, (now - before.accepted_at).total_seconds())
            found.append(Observation(what, before.type, seconds))
    return found


def _task(state: WorkflowState, task_id: str) -> TaskState | None:
    return next((task for task in state.tasks.values() if task.id == task_id), None)


def _since_dispatch(
    task: TaskState, event: TaskSucceeded | TaskAttemptFailed, now: datetime
) -> float | None:
    for attempt in task.attempts:
        if attempt.number == event.attempt:
            return max(0.0, (now - attempt.dispatched_at).total_seconds())
    return None
