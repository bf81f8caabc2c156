"""What the state machine is told (inputs) and what it asks for (commands)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.playbooks.model import Playbook
from orchestrator.workflow.state import (
    DeadLetter,
    EscalationState,
    ReviewDecision,
    TaskError,
    TaskState,
    WorkflowState,
)

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
    escalate: str | None = None  # the agent asks for a human, saying why


@dataclass(frozen=True, slots=True)
class ActionApproval:
    """An action an agent proposed that a governance policy lets run only with a
    reviewer's approval; its parameters by SHA-256 and size, and the deciding rule."""

    action: str
    params_digest: str
    params_size: int
    reason: str  # the policy's: names the action, the policy and the rule
    scopes: tuple[str, ...] = ()
    rule: Mapping[str, Any] | None = None  # policy, file, version, digest, path, line
    risk: str = "low"  # the highest risk level the policies give the action
    approvals: int = 1  # different reviewers who must approve it (2: four eyes)


@dataclass(frozen=True, slots=True)
class TaskAttemptFailed:
    """An agent reported that an attempt failed; ``approval``: it stopped at an action
    that waits for a reviewer's approval."""

    task_id: str
    attempt: int
    error: TaskError
    approval: ActionApproval | None = None
    reasoning: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LeaseExpired:
    """No result arrived before the task's lease ran out. ``undelivered``: the task's
    dispatch is still in the outbox (the broker has not accepted it), so no agent could
    have had it and the attempt is not used up."""

    task_id: str
    attempt: int
    undelivered: bool = False


@dataclass(frozen=True, slots=True)
class RetryDue:
    """A task's backoff delay has passed."""

    task_id: str


@dataclass(frozen=True, slots=True)
class DecisionMade:
    """A reviewer decided an escalation they saw at ``version`` with ``digest``."""

    escalation_id: str
    decision: ReviewDecision
    version: int
    digest: str


@dataclass(frozen=True, slots=True)
class ReviewDue:
    """An escalation's SLA deadline passed without a decision."""

    escalation_id: str


@dataclass(frozen=True, slots=True)
class PlanReady:
    """The LLM planner made a plan that passed its checks; ``plan`` is the playbook it
    makes (``orchestrator/planning/plans.py``), after ``attempts`` plans were asked for."""

    plan: Playbook
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class PlanFailed:
    """The LLM planner gave up: every plan was refused, its budget is spent, a policy
    denied it, or the model refused."""

    reason: str


@dataclass(frozen=True, slots=True)
class RetryRequested:
    """A person (``actor``) asks for a failed step to run again, saying why: a new attempt
    with a whole retry budget, on its last input or on ``input`` (used exactly, for this
    run). ``input_problems``: how ``input`` breaks its capability's input schema, as the
    adapter found: (field, message) each (the machine refuses an input with problems)."""

    step: str
    actor: str
    reason: str
    input: Mapping[str, Any] | None = None
    input_problems: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ResumeRequested:
    """A person (``actor``) asks for a failed workflow to run again from ``step``: the step
    and every step after it run again, on their mapped inputs, or the step on ``input``
    (used exactly, for this run). ``input_problems`` as for ``RetryRequested``."""

    step: str
    actor: str
    reason: str
    input: Mapping[str, Any] | None = None
    input_problems: tuple[tuple[str, str], ...] = ()


Input = (
    GoalAccepted
    | PlanReady
    | PlanFailed
    | TaskSucceeded
    | TaskAttemptFailed
    | LeaseExpired
    | RetryDue
    | DecisionMade
    | ReviewDue
    | RetryRequested
    | ResumeRequested
)

# --- commands: side effects for adapters to carry out ----------------------------------


@dataclass(frozen=True, slots=True)
class DispatchTask:
    """Publish a task to its capability's topic."""

    task: TaskState
    deadline: datetime

    @property
    def dispatched_at(self) -> datetime | None:
        """When the task's current attempt was dispatched (the event's ce_time)."""
        for attempt in self.task.attempts:
            if attempt.number == self.task.attempt:
                return attempt.dispatched_at
        return None


@dataclass(frozen=True, slots=True)
class DeadLetterTask:
    """Publish ``dispatch`` (the task's last dispatch, exactly as it was sent) to its
    topic's dead-letter topic: its attempts ran out, or it failed in a way retrying cannot
    fix. ``attempts`` were made; the first and last of them failed at the times given."""

    dispatch: DispatchTask
    error: TaskError
    attempts: int
    first_failure: datetime
    last_failure: datetime


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
    dead_letter: DeadLetter | None = None


@dataclass(frozen=True, slots=True)
class AnnounceWorkflowCancelled:
    """Publish workflow.cancelled; ``running``: the tasks that were dispatched (as they
    were, at the attempt an agent may still be running)."""

    reason: str
    actor: str
    running: tuple[TaskState, ...] = ()


@dataclass(frozen=True, slots=True)
class AnnounceTaskEscalated:
    """Publish task.escalated."""

    escalation: EscalationState


@dataclass(frozen=True, slots=True)
class RecordReviewEvent:
    """Write an audit entry about an escalation (opened, timed out, resolved)."""

    escalation: EscalationState
    action: str
    actor: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StorePlan:
    """Store the playbook version a plan makes: the workflow runs on it from now on."""

    plan: Playbook


Command = (
    DispatchTask
    | StorePlan
    | DeadLetterTask
    | AnnounceWorkflowStarted
    | AnnounceWorkflowCompleted
    | AnnounceWorkflowFailed
    | AnnounceWorkflowCancelled
    | AnnounceTaskEscalated
    | RecordReviewEvent
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
