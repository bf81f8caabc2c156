"""What the state machine is told (inputs) and what it asks for (commands)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.workflow.state import TaskError, TaskState, WorkflowState

# --- inputs: things that happened -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GoalAccepted:
    """Plan the workflow (once; a duplicate goal changes nothing)."""


@dataclass(frozen=True, slots=True)
class TaskSucceeded:
    """An agent returned an output for an attempt."""

    task_id: str
    attempt: int
    output: Mapping[str, Any]
    confidence: float
    reasoning: tuple[str, ...] = ()
    usage: Mapping[str, Any] | None = None
    agent: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class TaskAttemptFailed:
    """An agent reported that an attempt failed."""

    task_id: str
    attempt: int
    error: TaskError


@dataclass(frozen=True, slots=True)
class LeaseExpired:
    """No result arrived before the task's lease ran out."""

    task_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class RetryDue:
    """A task's backoff delay has passed."""

    task_id: str


Input = GoalAccepted | TaskSucceeded | TaskAttemptFailed | LeaseExpired | RetryDue

# --- commands: side effects for adapters to carry out ----------------------------------


@dataclass(frozen=True, slots=True)
class DispatchTask:
    """Publish a task to its capability's topic."""

    task: TaskState
    deadline: datetime


@dataclass(frozen=True, slots=True)
class AnnounceWorkflowStarted:
    """Publish workflow.started."""

    steps: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AnnounceWorkflowCompleted:
    """Publish workflow.completed."""

    output: Mapping[str, Any]
    duration_ms: float


@dataclass(frozen=True, slots=True)
class AnnounceWorkflowFailed:
    """Publish workflow.failed."""

    reason: str
    step: str | None
    error: TaskError | None


Command = (
    DispatchTask | AnnounceWorkflowStarted | AnnounceWorkflowCompleted | AnnounceWorkflowFailed
)


@dataclass(frozen=True, slots=True)
class Decision:
    """The new state and the commands that carry it out.

    ``applied`` is False when the input changed nothing (a duplicate or a stale result),
    with ``note`` saying why.
    """

    state: WorkflowState
    commands: tuple[Command, ...] = field(default_factory=tuple)
    applied: bool = True
    note: str | None = None
