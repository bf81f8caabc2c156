"""Workflow and task state, as the pure state machine sees it (immutable values)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class WorkflowStatus(StrEnum):
    """Where a workflow is in its life."""

    ACCEPTED = "accepted"  # goal recorded, not planned yet
    PLANNING = "planning"  # the LLM planner makes its plan, or a reviewer approves it
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"  # a person stopped it (``workflow/cancellation.py``)

    @property
    def finished(self) -> bool:
        """True once the workflow can no longer change."""
        return self in (WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED)


class TaskStatus(StrEnum):
    """Where a task is in its life."""

    PENDING = "pending"  # waiting for the steps it depends on
    DISPATCHED = "dispatched"  # published to its capability; lease running
    RETRY_WAIT = "retry_wait"  # an attempt failed; the next one is due at next_attempt_at
    AWAITING_REVIEW = "awaiting_review"  # its result (the proposal) waits for a reviewer
    COMPLETED = "completed"
    FAILED = "failed"  # attempts exhausted, or a failure retrying cannot fix
    SKIPPED = "skipped"  # its `when` condition was false
    CANCELLED = "cancelled"  # the workflow failed or was cancelled before it finished

    @property
    def finished(self) -> bool:
        """True once the task can no longer change."""
        return self in _FINISHED

    @property
    def succeeded(self) -> bool:
        """True if steps depending on this one may run."""
        return self in (TaskStatus.COMPLETED, TaskStatus.SKIPPED)


_FINISHED = frozenset(
    {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED}
)


@dataclass(frozen=True, slots=True)
class TaskError:
    """Why an attempt failed."""

    type: str
    message: str
    retryable: bool = True

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"type": self.type, "message": self.message, "retryable": self.retryable}


@dataclass(frozen=True, slots=True)
class Attempt:
    """One dispatch of a task and how it ended."""

    number: int
    dispatched_at: datetime
    finished_at: datetime | None = None
    # completed | failed | lease_expired | cancelled | superseded (an earlier attempt won)
    outcome: str | None = None
    error: TaskError | None = None
    capability: str | None = None  # the step's fallback it went to (None: the step's own)


@dataclass(frozen=True, slots=True)
class TaskState:
    """One step of one workflow."""

    id: str
    step: str
    capability: str
    status: TaskStatus
    max_attempts: int
    attempt: int = 0
    input: Mapping[str, Any] | None = None
    output: Mapping[str, Any] | None = None
    confidence: float | None = None
    reasoning: tuple[str, ...] = ()
    usage: Mapping[str, Any] | None = None
    agent: Mapping[str, Any] | None = None
    error: TaskError | None = None
    lease_expires_at: datetime | None = None
    next_attempt_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: tuple[Attempt, ...] = ()
    proposal: Mapping[str, Any] | None = None  # an output waiting for a reviewer
    # Results of attempts before this one no longer count: a reviewer sent the step
    # back (retry, or a rejection going back to it or a step it depends on).
    first_valid_attempt: int = 1

    def evolve(self, **changes: Any) -> TaskState:
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Where a failed workflow's task was dead-lettered: ``topic`` (``<task topic>.dlq``)
    holds the task's last dispatch, whose ce_id is ``event_id``. A result for that attempt
    (``task_id``, ``attempt``), such as the one its replay produces, resumes the workflow."""

    topic: str
    event_id: str
    task_id: str
    attempt: int

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "topic": self.topic,
            "event_id": self.event_id,
            "task_id": self.task_id,
            "attempt": self.attempt,
        }


class EscalationStatus(StrEnum):
    """Where an escalation is."""

    PENDING = "pending"  # waiting for a reviewer
    DECIDED = "decided"  # a reviewer's decision won; the workflow resumes with it
    RESOLVED = "resolved"  # the decision was applied, or the workflow ended first


@dataclass(frozen=True, slots=True)
class ReviewDecision:
    """A reviewer's decision on an escalation."""

    id: str
    action: str  # approve | edit | reject | retry
    reviewer: str
    decided_at: datetime
    output: Mapping[str, Any] | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class EscalationState:
    """A task result waiting for a human, and what the reviewer is shown (``content``,
    whose SHA-256 is ``digest``) at ``version``."""

    id: str
    task_id: str
    step: str
    attempt: int
    # agent_request | low_confidence | approval | fallback (every attempt failed) |
    # policy_approval (an action a governance policy holds for approval)
    kind: str
    reason: str
    status: EscalationStatus
    priority: int
    group: str
    version: int
    digest: str
    content: Mapping[str, Any]
    opened_at: datetime
    due_at: datetime
    warn_at: datetime
    assignee: str | None = None
    claimed_at: datetime | None = None
    overdue: bool = False
    decision: ReviewDecision | None = None
    resolved_at: datetime | None = None
    # Four eyes (``four_eyes.py``): how many different reviewers must approve, and the
    # approvals (approve or edit decisions) given so far to the output awaiting approval.
    required_approvals: int = 1
    approvals: tuple[ReviewDecision, ...] = ()

    def evolve(self, **changes: Any) -> EscalationState:
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class WorkflowState:
    """A workflow and its tasks, keyed by step name."""

    id: str
    type: str
    status: WorkflowStatus
    input: Mapping[str, Any]
    accepted_at: datetime
    tasks: Mapping[str, TaskState] = field(default_factory=dict)
    output: Mapping[str, Any] | None = None
    reason: str | None = None
    failed_step: str | None = None
    error: TaskError | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    traceparent: str | None = None
    tracestate: str | None = None
    playbook_digest: str | None = None  # the playbook version that planned it
    escalations: Mapping[str, EscalationState] = field(default_factory=dict)
    # The dead letter to replay to resume a workflow that failed on an exhausted task.
    dead_letter: DeadLetter | None = None

    def evolve(self, **changes: Any) -> WorkflowState:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def with_task(self, task: TaskState) -> WorkflowState:
        """A copy with one task replaced."""
        return replace(self, tasks={**self.tasks, task.step: task})

    def with_escalation(self, escalation: EscalationState) -> WorkflowState:
        """A copy with one escalation added or replaced."""
        return replace(self, escalations={**self.escalations, escalation.id: escalation})

    def capability_of(self, escalation: EscalationState) -> str:
        """The capability an escalation is about: its task's, or the one its content
        names (``planner`` for a plan escalation, which has no task)."""
        task = self.tasks.get(escalation.step)
        if task is not None and task.id == escalation.task_id:
            return task.capability
        return str(escalation.content.get("capability", "unknown"))

    def task_by_id(self, task_id: str) -> TaskState | None:
        """The task with this id, if it belongs to this workflow."""
        for task in self.tasks.values():
            if task.id == task_id:
                return task
        return None
