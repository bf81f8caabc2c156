"""A harness for the workflow state machine: one workflow, a clock only the test moves."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from textwrap import dedent
from typing import Any

from orchestrator.playbooks.loader import load_text
from orchestrator.playbooks.model import Playbook
from orchestrator.workflow.machine import Environment, decide, dispatch_id
from orchestrator.workflow.messages import (
    Decision,
    DispatchTask,
    GoalAccepted,
    Input,
    TaskAttemptFailed,
    TaskSucceeded,
)
from orchestrator.workflow.retry import RetryPolicy
from orchestrator.workflow.state import (
    DeadLetter,
    TaskError,
    TaskState,
    TaskStatus,
    WorkflowState,
    WorkflowStatus,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
WORKFLOW_ID = "wf-1"

# Two roots (fan-out) feeding one step (fan-in), as the support playbook does.
TICKET = """\
type: ticket
input_schema:
  type: object
  required: [subject]
  properties: {subject: {type: string}}
defaults:
  timeout: 30s
  retries: 2
  backoff: {initial: 2s, max: 5s}
steps:
  - name: triage
    capability: triage
    input: {subject: $goal.subject, customer: $goal.customer}
  - name: knowledge
    capability: knowledge
    input: {query: $goal.subject, k: 3}
  - name: reply
    capability: reply
    depends_on: [triage, knowledge]
    input:
      category: $steps.triage.output.category
      articles: $steps.knowledge.output.articles
      workflow: $workflow.id
output:
  category: $steps.triage.output.category
  reply: $steps.reply.output.text
"""

# One step, no backoff of its own: the environment's retry policy applies.
SINGLE = """\
type: single
steps:
  - name: only
    capability: echo
    timeout: 10s
    input: {text: $goal.text}
"""

# `escalate` runs only for urgent tickets; `close` runs after it either way.
CONDITIONAL = """\
type: conditional
steps:
  - name: triage
    capability: triage
  - name: escalate
    capability: pager
    depends_on: [triage]
    when: {ref: $steps.triage.output.urgency, in: [high, urgent]}
  - name: close
    capability: closer
    depends_on: [escalate]
    input: {paged: $steps.escalate.output.paged, urgency: $steps.triage.output.urgency}
"""


def load_playbook(text: str) -> Playbook:
    """A playbook from inline YAML (indentation removed), checked as a file would be."""
    return load_text(dedent(text), source="test.yaml")


@dataclass
class Run:
    """One workflow under test: inputs are applied at ``now``, which only the test moves."""

    playbook: Playbook | None
    goal_input: Mapping[str, Any] = field(default_factory=dict)
    random: Callable[[], float] = lambda: 0.5
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    now: datetime = T0
    state: WorkflowState = field(init=False)

    def __post_init__(self) -> None:
        self.state = WorkflowState(
            id=WORKFLOW_ID,
            type=self.playbook.type if self.playbook else "nobody.plans.this",
            status=WorkflowStatus.ACCEPTED,
            input=dict(self.goal_input),
            accepted_at=self.now,
        )

    def env(self) -> Environment:
        """What the machine may consult besides the state: the playbook, clock and dice."""
        return Environment(
            self.playbook, self.now, self.random, self.retry, known_types=("a.type", "b.type")
        )

    def apply(self, event: Input) -> Decision:
        """Decide one input at ``now`` and keep the resulting state."""
        decision = decide(self.state, event, self.env())
        self.state = decision.state
        return decision

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(seconds=seconds)

    def task(self, step: str) -> TaskState:
        """The current state of one step's task."""
        return self.state.tasks[step]

    def start(self) -> Decision:
        """Plan the goal."""
        return self.apply(GoalAccepted())

    def succeed(
        self, step: str, output: Mapping[str, Any] | None = None, *, attempt: int | None = None
    ) -> Decision:
        """Report an agent's output for a step (its current attempt unless told)."""
        task = self.task(step)
        return self.apply(
            TaskSucceeded(
                task.id,
                attempt if attempt is not None else task.attempt,
                output if output is not None else {"from": step},
                confidence=0.75,
                reasoning=("because",),
                usage={"input_tokens": 3},
                agent={"capability": task.capability, "version": "1", "instance": "i"},
            )
        )

    def fail(
        self,
        step: str,
        *,
        retryable: bool = True,
        attempt: int | None = None,
        message: str = "boom",
    ) -> Decision:
        """Report a failed attempt of a step (its current attempt unless told)."""
        task = self.task(step)
        error = TaskError("RuntimeError", message, retryable)
        return self.apply(
            TaskAttemptFailed(task.id, attempt if attempt is not None else task.attempt, error)
        )


def dispatched_steps(decision: Decision) -> list[str]:
    """The steps a decision dispatches, in command order."""
    return [c.task.step for c in decision.commands if isinstance(c, DispatchTask)]


def statuses(run: Run) -> dict[str, TaskStatus]:
    """Every task's status by step name."""
    return {name: task.status for name, task in run.state.tasks.items()}


def ticket_run() -> Run:
    """A fresh, unplanned run of the fan-out/fan-in ticket playbook."""
    return Run(load_playbook(TICKET), {"subject": "Refund please"})


def dead_letter_of(run: Run, step: str) -> DeadLetter:
    """The dead letter of a step's current attempt (in the default ``waypost`` namespace)."""
    task = run.task(step)
    return DeadLetter(
        f"waypost.tasks.{task.capability}.dlq",
        dispatch_id(task.id, task.attempt),
        task.id,
        task.attempt,
    )


def dead_lettered(reason: str, letter: DeadLetter) -> str:
    """A failure reason followed by the dead letter to replay to resume the workflow."""
    return (
        f"{reason}; dead-lettered to {letter.topic} as event {letter.event_id}: "
        "fix and replay it to resume"
    )
