"""The workflow state machine: (state, input) -> new state + commands. Pure: no I/O.

Steps run once every step they depend on completed or was skipped; a step whose
``when`` is false is skipped; independent steps run in parallel (fan-out) and a step
with several dependencies waits for all of them (fan-in). A failed attempt is retried
with backoff while attempts remain and the error is retryable; then the workflow fails
with a reason naming the step and the last error. Results are applied at most once: the
first result for an open task wins, anything later is reported as not applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from orchestrator.playbooks.mapping import evaluate, resolve
from orchestrator.playbooks.model import Playbook, Step
from orchestrator.workflow.messages import (
    AnnounceWorkflowCompleted,
    AnnounceWorkflowFailed,
    AnnounceWorkflowStarted,
    Command,
    Decision,
    DispatchTask,
    GoalAccepted,
    Input,
    LeaseExpired,
    RetryDue,
    TaskAttemptFailed,
    TaskSucceeded,
)
from orchestrator.workflow.retry import RetryPolicy
from orchestrator.workflow.state import (
    Attempt,
    TaskError,
    TaskState,
    TaskStatus,
    WorkflowState,
    WorkflowStatus,
)

_TASK_NAMESPACE = uuid.UUID("6f1d2c7e-51a4-4c39-9a57-3c1e5b0f8d21")


def task_id(workflow_id: str, step: str) -> str:
    """The task id of a step: stable, so every re-dispatch names the same task."""
    return str(uuid.uuid5(_TASK_NAMESPACE, f"{workflow_id}/{step}"))


@dataclass(frozen=True, slots=True)
class Environment:
    """Everything a decision depends on besides the state and the input."""

    playbook: Playbook | None
    now: datetime
    random: Callable[[], float]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    known_types: Sequence[str] = ()


def decide(state: WorkflowState, event: Input, env: Environment) -> Decision:
    """Apply one input to a workflow."""
    if isinstance(event, GoalAccepted):
        return _plan(state, env)
    if state.status.finished:
        return Decision(state, applied=False, note=f"workflow already {state.status}")
    if env.playbook is None:
        return Decision(state, applied=False, note=f"no playbook for {state.type!r}")
    if (
        state.playbook_digest
        and env.playbook.digest
        and env.playbook.digest != (state.playbook_digest)
    ):
        # The adapter must hand over the version that planned this workflow.
        raise ValueError(f"workflow {state.id} was planned by playbook {state.playbook_digest}")
    task = state.task_by_id(event.task_id)
    if task is None:
        return Decision(state, applied=False, note=f"task {event.task_id} is not in this workflow")
    step = env.playbook.step(task.step)
    if isinstance(event, TaskSucceeded):
        return _succeeded(state, task, event, env)
    if isinstance(event, TaskAttemptFailed):
        if task.status is not TaskStatus.DISPATCHED or event.attempt != task.attempt:
            return _stale(task, event.attempt, state)
        return _failed(state, task, step, event.error, "failed", env)
    if isinstance(event, LeaseExpired):
        if (
            task.status is not TaskStatus.DISPATCHED
            or event.attempt != task.attempt
            or task.lease_expires_at is None
            or task.lease_expires_at > env.now
        ):
            return _stale(task, event.attempt, state)
        error = TaskError("LeaseExpired", f"no result within {step.timeout_s:g} s of dispatch")
        return _failed(state, task, step, error, "lease_expired", env)
    assert isinstance(event, RetryDue)
    if (
        task.status is not TaskStatus.RETRY_WAIT
        or task.next_attempt_at is None
        or task.next_attempt_at > env.now
    ):
        return Decision(state, applied=False, note=f"task {task.step} has no retry due")
    dispatched, command = _dispatch(task, step, task.attempt + 1, task.input or {}, env.now)
    return Decision(state.with_task(dispatched), (command,))


def _plan(state: WorkflowState, env: Environment) -> Decision:
    if state.status is not WorkflowStatus.ACCEPTED:
        return Decision(state, applied=False, note="goal already planned")
    playbook = env.playbook
    if playbook is None:
        known = ", ".join(env.known_types) or "none"
        return _fail(state, f"no playbook for goal type {state.type!r} (known: {known})", env)
    errors = playbook.input_errors(dict(state.input))
    if errors:
        return _fail(state, "goal input is invalid: " + "; ".join(errors), env)
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
        started_at=env.now,
        playbook_digest=playbook.digest or None,
    )
    announce = AnnounceWorkflowStarted(tuple(s.name for s in playbook.steps))
    advanced, commands = _advance(started, playbook, env)
    return Decision(advanced, (announce, *commands))


def _succeeded(
    state: WorkflowState, task: TaskState, event: TaskSucceeded, env: Environment
) -> Decision:
    open_states = (TaskStatus.DISPATCHED, TaskStatus.RETRY_WAIT)
    if task.status not in open_states or not 1 <= event.attempt <= task.attempt:
        return _stale(task, event.attempt, state)
    done = task.evolve(
        status=TaskStatus.COMPLETED,
        output=dict(event.output),
        confidence=event.confidence,
        reasoning=event.reasoning,
        usage=event.usage,
        agent=event.agent,
        error=None,
        lease_expires_at=None,
        next_attempt_at=None,
        finished_at=env.now,
        attempts=_record_success(task.attempts, event.attempt, env.now),
    )
    assert env.playbook is not None
    advanced, commands = _advance(state.with_task(done), env.playbook, env)
    return Decision(advanced, commands)


def _failed(
    state: WorkflowState,
    task: TaskState,
    step: Step,
    error: TaskError,
    outcome: str,
    env: Environment,
) -> Decision:
    attempts = _close_attempt(task.attempts, task.attempt, env.now, outcome, error)
    if error.retryable and task.attempt < task.max_attempts:
        policy = env.retry
        if step.backoff is not None:
            policy = RetryPolicy(
                step.backoff.initial_s or policy.initial_s, step.backoff.max_s or policy.max_s
            )
        delay = policy.delay(task.attempt, env.random)
        waiting = task.evolve(
            status=TaskStatus.RETRY_WAIT,
            error=error,
            lease_expires_at=None,
            next_attempt_at=env.now + timedelta(seconds=delay),
            attempts=attempts,
        )
        return Decision(state.with_task(waiting))
    failed = task.evolve(
        status=TaskStatus.FAILED,
        error=error,
        lease_expires_at=None,
        finished_at=env.now,
        attempts=attempts,
    )
    if error.retryable:
        reason = (
            f"step {task.step!r} failed after {task.attempt} attempt(s): "
            f"{error.type}: {error.message}"
        )
    else:
        reason = f"step {task.step!r} failed and cannot be retried: {error.type}: {error.message}"
    return _fail(state.with_task(failed), reason, env, step=task.step, error=error)


def _advance(
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
            context = _context(state)
            if step.when is not None and not evaluate(step.when, context):
                skipped = task.evolve(status=TaskStatus.SKIPPED, finished_at=env.now)
                state = state.with_task(skipped)
            else:
                dispatched, command = _dispatch(
                    task, step, 1, resolve(dict(step.input), context), env.now
                )
                state = state.with_task(dispatched)
                commands.append(command)
            progressed = True
    if all(task.status.succeeded for task in state.tasks.values()):
        output = _output(state, playbook)
        duration = (env.now - (state.started_at or env.now)).total_seconds() * 1000
        state = state.evolve(status=WorkflowStatus.COMPLETED, output=output, finished_at=env.now)
        commands.append(AnnounceWorkflowCompleted(output, duration))
    return state, tuple(commands)


def _dispatch(
    task: TaskState, step: Step, attempt: int, task_input: Mapping[str, Any], now: datetime
) -> tuple[TaskState, DispatchTask]:
    lease = now + timedelta(seconds=step.timeout_s)
    dispatched = task.evolve(
        status=TaskStatus.DISPATCHED,
        attempt=attempt,
        input=dict(task_input),
        lease_expires_at=lease,
        next_attempt_at=None,
        attempts=(*task.attempts, Attempt(attempt, now)),
    )
    return dispatched, DispatchTask(dispatched, lease)


def _fail(
    state: WorkflowState,
    reason: str,
    env: Environment,
    *,
    step: str | None = None,
    error: TaskError | None = None,
) -> Decision:
    tasks = {
        name: task
        if task.status.finished
        else task.evolve(
            status=TaskStatus.CANCELLED,
            lease_expires_at=None,
            next_attempt_at=None,
            finished_at=env.now,
            attempts=_close_attempt(task.attempts, task.attempt, env.now, "cancelled", None),
        )
        for name, task in state.tasks.items()
    }
    failed = state.evolve(
        status=WorkflowStatus.FAILED,
        tasks=tasks,
        reason=reason,
        failed_step=step,
        error=error,
        finished_at=env.now,
    )
    return Decision(failed, (AnnounceWorkflowFailed(reason, step, error),))


def _stale(task: TaskState, attempt: int, state: WorkflowState) -> Decision:
    note = (
        f"result for attempt {attempt} of {task.step!r} ignored: "
        f"task is {task.status} at attempt {task.attempt}"
    )
    return Decision(state, applied=False, note=note)


def _close_attempt(
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


def _record_success(
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


def _context(state: WorkflowState) -> dict[str, Any]:
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


def _output(state: WorkflowState, playbook: Playbook) -> dict[str, Any]:
    if playbook.output is None:
        return {name: task.output for name, task in state.tasks.items()}
    output = resolve(playbook.output, _context(state))
    return output if isinstance(output, dict) else {"result": output}


def due_timers(state: WorkflowState, now: datetime) -> list[Input]:
    """The lease expiries and retries of a workflow that are due at ``now``."""
    due: list[Input] = []
    for task in state.tasks.values():
        if (
            task.status is TaskStatus.DISPATCHED
            and task.lease_expires_at is not None
            and task.lease_expires_at <= now
        ):
            due.append(LeaseExpired(task.id, task.attempt))
        elif (
            task.status is TaskStatus.RETRY_WAIT
            and task.next_attempt_at is not None
            and task.next_attempt_at <= now
        ):
            due.append(RetryDue(task.id))
    return due
