"""Transitions every part of the state machine shares: advancing the graph, dispatching a
task (through its capability's circuit, or to the step's fallback), failing a workflow,
and keeping the attempt history. Pure: no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from orchestrator.playbooks.mapping import evaluate, resolve
from orchestrator.playbooks.model import Playbook, Step
from orchestrator.workflow.breaker import Admission, CircuitBook
from orchestrator.workflow.messages import (
    AnnounceWorkflowCompleted,
    AnnounceWorkflowFailed,
    AnnounceWorkflowStarted,
    Command,
    Decision,
    DispatchTask,
)
from orchestrator.workflow.retry import RetryPolicy
from orchestrator.workflow.state import (
    Attempt,
    DeadLetter,
    EscalationStatus,
    TaskError,
    TaskState,
    TaskStatus,
    WorkflowState,
    WorkflowStatus,
)
from waypost.topics import Topics

_DISPATCH_NAMESPACE = uuid.UUID("c2b7e4a1-0d6f-4e38-8a59-7f3e2d1c9b04")
_TASK_NAMESPACE = uuid.UUID("6f1d2c7e-51a4-4c39-9a57-3c1e5b0f8d21")


@dataclass(frozen=True, slots=True)
class Environment:
    """Everything a decision depends on besides the state and the input. ``topics`` names
    the dead-letter topics a failed workflow points to. ``circuits`` are the capabilities'
    circuit breakers as this batch of decisions sees them; the decision records in it
    what it did to them (the book's events are outputs, like the commands)."""

    playbook: Playbook | None
    now: datetime
    random: Callable[[], float]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    known_types: Sequence[str] = ()
    topics: Topics = field(default_factory=lambda: Topics("waypost"))
    circuits: CircuitBook = field(default_factory=CircuitBook)


def task_id(workflow_id: str, step: str) -> str:
    """The task id of a step: stable, so every re-dispatch names the same task."""
    return str(uuid.uuid5(_TASK_NAMESPACE, f"{workflow_id}/{step}"))


def begin(
    state: WorkflowState, playbook: Playbook, env: Environment, *, first: Sequence[Command] = ()
) -> Decision:
    """Start the workflow on ``playbook`` (its goal type's, or the one its plan makes):
    a pending task per step, then dispatch what can run. ``first``: commands before the
    announcement (storing the plan, a review record)."""
    tasks = {
        step.name: TaskState(
            id=task_id(state.id, step.name),
            step=step.name,
            capability=step.capability,
            status=TaskStatus.PENDING,
            max_attempts=step.max_attempts,
        )
        for step in playbook.steps
    }
    started = state.evolve(
        status=WorkflowStatus.RUNNING,
        tasks=tasks,
        started_at=state.started_at or env.now,
        playbook_digest=playbook.digest or None,
    )
    announce = AnnounceWorkflowStarted(tuple(step.name for step in playbook.steps))
    advanced, commands = advance(started, playbook, env)
    return Decision(advanced, (*first, announce, *commands))


def dispatch_id(task_id: str, attempt: int) -> str:
    """The event id (ce_id) of a task's dispatch for ``attempt``: stable, so the dead
    letter of an attempt is its dispatch exactly, and a replay names the attempt it runs."""
    return str(uuid.uuid5(_DISPATCH_NAMESPACE, f"{task_id}#{attempt}"))


def advance(
    state: WorkflowState, playbook: Playbook, env: Environment
) -> tuple[WorkflowState, tuple[Command, ...]]:
    """Dispatch or skip every step whose dependencies are done; complete when all are."""
    commands: list[Command] = []
    progressed = True
    while progressed:
        progressed = False
        for step in playbook.steps:
            task = state.tasks[step.name]
            if task.status is not TaskStatus.PENDING:
                continue
            if not all(state.tasks[d].status.succeeded for d in step.depends_on):
                continue
            context = step_context(state)
            if step.when is not None and not evaluate(step.when, context):
                skipped = task.evolve(status=TaskStatus.SKIPPED, finished_at=env.now)
                state = state.with_task(skipped)
            else:
                # A new run of the step starts on its own capability (a reset may have
                # left the task on the fallback).
                fresh = task.evolve(capability=step.capability)
                sent, dispatches = send(
                    state.id, fresh, step, resolve(dict(step.input), context), env
                )
                state = state.with_task(sent)
                commands.extend(dispatches)
            progressed = True
    if all(task.status.succeeded for task in state.tasks.values()):
        output = workflow_output(state, playbook)
        duration = (env.now - (state.started_at or env.now)).total_seconds() * 1000
        state = state.evolve(status=WorkflowStatus.COMPLETED, output=output, finished_at=env.now)
        commands.append(AnnounceWorkflowCompleted(output, duration))
    return state, tuple(commands)


def dispatch(
    task: TaskState, step: Step, attempt: int, task_input: Mapping[str, Any], now: datetime
) -> tuple[TaskState, DispatchTask]:
    """Send attempt ``attempt`` of the task to its capability (no questions asked)."""
    lease = now + timedelta(seconds=step.timeout_s)
    fallback = task.capability if task.capability != step.capability else None
    dispatched = task.evolve(
        status=TaskStatus.DISPATCHED,
        attempt=attempt,
        input=dict(task_input),
        lease_expires_at=lease,
        next_attempt_at=None,
        attempts=(*task.attempts, Attempt(attempt, now, capability=fallback)),
    )
    return dispatched, DispatchTask(dispatched, lease)


CIRCUIT_OPEN = "CircuitOpen"  # the error of a task waiting for a circuit


def send(
    workflow_id: str,
    task: TaskState,
    step: Step,
    task_input: Mapping[str, Any],
    env: Environment,
) -> tuple[TaskState, tuple[Command, ...]]:
    """Dispatch the task's next attempt if its capability's circuit lets it through;
    otherwise move it to the step's fallback (once) and try there; otherwise let it wait,
    without spending an attempt, until the circuit may let it through."""
    admission = env.circuits.admit(
        task.capability,
        workflow_id=workflow_id,
        task_id=task.id,
        now=env.now,
        probe_until=env.now + timedelta(seconds=step.timeout_s),
    )
    if admission.allowed:
        dispatched, command = dispatch(task, step, task.attempt + 1, task_input, env.now)
        return dispatched, (command,)
    if step.fallback is not None and task.capability == step.capability:
        return send(workflow_id, to_fallback(task, step), step, task_input, env)
    return _wait_for_circuit(task, task_input, admission, env.now), ()


def to_fallback(task: TaskState, step: Step) -> TaskState:
    """The task moved to the step's fallback, with the fallback's attempts to spend."""
    assert step.fallback is not None
    return task.evolve(
        capability=step.fallback.capability,
        max_attempts=task.attempt + step.fallback.max_attempts,
    )


def _wait_for_circuit(
    task: TaskState, task_input: Mapping[str, Any], admission: Admission, now: datetime
) -> TaskState:
    return task.evolve(
        status=TaskStatus.RETRY_WAIT,
        input=dict(task_input),
        error=TaskError(CIRCUIT_OPEN, admission.reason),
        lease_expires_at=None,
        next_attempt_at=admission.retry_at or now,
    )


def attempt_capability(task: TaskState, step: Step, number: int) -> str:
    """The capability attempt ``number`` of the task went to."""
    for attempt in task.attempts:
        if attempt.number == number:
            return attempt.capability or step.capability
    return task.capability


def fail_workflow(
    state: WorkflowState,
    reason: str,
    env: Environment,
    *,
    step: str | None = None,
    error: TaskError | None = None,
    dead_letter: DeadLetter | None = None,
) -> Decision:
    failed = close_open(state, env.now).evolve(
        status=WorkflowStatus.FAILED,
        reason=reason,
        failed_step=step,
        error=error,
        finished_at=env.now,
        dead_letter=dead_letter,
    )
    return Decision(failed, (AnnounceWorkflowFailed(reason, step, error, dead_letter),))


def close_open(state: WorkflowState, now: datetime) -> WorkflowState:
    """The workflow with every unfinished task cancelled (its open attempt closed, its
    timers stopped) and every open escalation resolved without a decision: what ending
    a workflow early does to what is still under way."""
    tasks = {
        name: task
        if task.status.finished
        else task.evolve(
            status=TaskStatus.CANCELLED,
            lease_expires_at=None,
            next_attempt_at=None,
            finished_at=now,
            attempts=close_attempt(task.attempts, task.attempt, now, "cancelled", None),
        )
        for name, task in state.tasks.items()
    }
    escalations = {
        key: escalation
        if escalation.status is EscalationStatus.RESOLVED
        else escalation.evolve(status=EscalationStatus.RESOLVED, resolved_at=now)
        for key, escalation in state.escalations.items()
    }
    return state.evolve(tasks=tasks, escalations=escalations)


def stale(task: TaskState, attempt: int, state: WorkflowState) -> Decision:
    note = (
        f"result for attempt {attempt} of {task.step!r} ignored: "
        f"task is {task.status} at attempt {task.attempt}"
    )
    return Decision(state, applied=False, note=note)


def close_attempt(
    attempts: tuple[Attempt, ...],
    number: int,
    now: datetime,
    outcome: str,
    error: TaskError | None,
) -> tuple[Attempt, ...]:
    return tuple(
        replace(a, finished_at=now, outcome=outcome, error=error)
        if a.number == number and a.finished_at is None
        else a
        for a in attempts
    )


def record_success(
    attempts: tuple[Attempt, ...], number: int, now: datetime
) -> tuple[Attempt, ...]:
    """The winning attempt completed (even after its lease expired); open ones are moot."""
    recorded = []
    for attempt in attempts:
        if attempt.number == number:
            attempt = replace(
                attempt, finished_at=attempt.finished_at or now, outcome="completed", error=None
            )
        elif attempt.finished_at is None:
            attempt = replace(attempt, finished_at=now, outcome="superseded")
        recorded.append(attempt)
    return tuple(recorded)


def step_context(state: WorkflowState) -> dict[str, Any]:
    steps = {
        name: {"output": task.output, "confidence": task.confidence, "status": str(task.status)}
        for name, task in state.tasks.items()
        if task.status.succeeded
    }
    return {
        "goal": state.input,
        "steps": steps,
        "workflow": {"id": state.id, "type": state.type},
    }


def workflow_output(state: WorkflowState, playbook: Playbook) -> dict[str, Any]:
    if playbook.output is None:
        return {name: task.output for name, task in state.tasks.items()}
    output = resolve(playbook.output, step_context(state))
    return output if isinstance(output, dict) else {"result": output}
