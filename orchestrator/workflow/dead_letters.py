"""Exhausted tasks (pure): dead-lettering a task that cannot succeed by retrying, and
resuming its workflow when a result for the dead-lettered attempt arrives.

A task whose attempts ran out, or whose failure retrying cannot fix, fails its workflow.
Its last dispatch, rebuilt exactly (same ce_id, see ``dispatch_id``), goes to its topic's
dead-letter topic, and the workflow keeps a pointer to it (``WorkflowState.dead_letter``).
An analyst fixes the dead letter and replays it; the agent runs it and its result, for the
same task and attempt, resumes the workflow as if that attempt had just succeeded. A
replay that fails again is dead-lettered again and the workflow stays failed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from orchestrator.playbooks.model import Playbook, Step
from orchestrator.workflow.messages import (
    DeadLetterTask,
    Decision,
    DispatchTask,
    Input,
    TaskAttemptFailed,
    TaskSucceeded,
)
from orchestrator.workflow.state import (
    DeadLetter,
    TaskError,
    TaskState,
    TaskStatus,
    WorkflowState,
    WorkflowStatus,
)
from orchestrator.workflow.transitions import Environment, dispatch_id, fail_workflow

_FAILED = ("failed", "lease_expired")  # attempt outcomes that count as failures


def exhausted(
    state: WorkflowState, task: TaskState, step: Step, error: TaskError, env: Environment
) -> Decision:
    """Fail the workflow on ``task`` (already failed, its last attempt closed) and
    dead-letter the task's last dispatch."""
    letter = _pointer(task, env)
    decision = fail_workflow(
        state.with_task(task),
        failure_reason(task, error, letter),
        env,
        step=task.step,
        error=error,
        dead_letter=letter,
    )
    return Decision(decision.state, (_dead_letter(task, step, error), *decision.commands))


def replayed_task(state: WorkflowState, event: Input) -> TaskState | None:
    """The task a result is for, when it is the result of the dead-lettered attempt of a
    workflow that failed on it (a replay of the dead letter ran); else None."""
    letter = state.dead_letter
    if (
        state.status is not WorkflowStatus.FAILED
        or letter is None
        or not isinstance(event, TaskSucceeded | TaskAttemptFailed)
        or (event.task_id, event.attempt) != (letter.task_id, letter.attempt)
    ):
        return None
    task = state.task_by_id(event.task_id)
    if task is None or task.status is not TaskStatus.FAILED or task.attempt != event.attempt:
        return None
    return task


def reopen(state: WorkflowState, playbook: Playbook, replayed: TaskState) -> WorkflowState:
    """A failed workflow running again: its failure forgotten, every task cancelled by the
    failure pending again with a whole retry budget (its next dispatch is a new attempt),
    and the dead-lettered attempt of ``replayed`` open for its result."""
    tasks = {
        name: task.evolve(
            status=TaskStatus.PENDING,
            capability=playbook.step(name).capability,
            proposal=None,
            error=None,
            lease_expires_at=None,
            next_attempt_at=None,
            finished_at=None,
            max_attempts=task.attempt + playbook.step(name).max_attempts,
            # A result of the attempt the failure cancelled (its agent may still run it)
            # is late once the task runs again.
            first_valid_attempt=task.attempt + 1,
        )
        if task.status is TaskStatus.CANCELLED
        else task
        for name, task in state.tasks.items()
    }
    attempts = tuple(
        replace(a, finished_at=None, outcome=None, error=None)
        if a.number == replayed.attempt
        else a
        for a in replayed.attempts
    )
    tasks[replayed.step] = replayed.evolve(error=None, finished_at=None, attempts=attempts)
    return state.evolve(
        status=WorkflowStatus.RUNNING,
        tasks=tasks,
        reason=None,
        failed_step=None,
        error=None,
        finished_at=None,
        dead_letter=None,
    )


def failed_again(
    state: WorkflowState, task: TaskState, step: Step, error: TaskError, env: Environment
) -> Decision:
    """The replay of a dead-lettered attempt failed too: dead-letter the dispatch again
    with the new error; the workflow stays failed, its reason and error updated (no
    second workflow.failed: the workflow did not change status)."""
    attempts = tuple(
        replace(a, finished_at=env.now, outcome="failed", error=error)
        if a.number == task.attempt
        else a
        for a in task.attempts
    )
    failed = task.evolve(error=error, attempts=attempts, finished_at=env.now)
    letter = _pointer(failed, env)
    updated = state.with_task(failed).evolve(
        reason=failure_reason(failed, error, letter), error=error, dead_letter=letter
    )
    return Decision(updated, (_dead_letter(failed, step, error),))


def failure_reason(task: TaskState, error: TaskError, letter: DeadLetter) -> str:
    """Why the workflow failed, and how to resume it."""
    if error.retryable:
        why = f"failed after {task.attempt} attempt(s)"
    else:
        why = "failed and cannot be retried"
    fallbacks = sorted({a.capability for a in task.attempts if a.capability})
    if fallbacks:
        why += f" (on its fallback {', '.join(fallbacks)} too)"
    return (
        f"step {task.step!r} {why}: {error.type}: {error.message}; dead-lettered to "
        f"{letter.topic} as event {letter.event_id}: fix and replay it to resume"
    )


def _pointer(task: TaskState, env: Environment) -> DeadLetter:
    return DeadLetter(
        topic=env.topics.dlq(env.topics.tasks(task.capability)),
        event_id=dispatch_id(task.id, task.attempt),
        task_id=task.id,
        attempt=task.attempt,
    )


def _dead_letter(task: TaskState, step: Step, error: TaskError) -> DeadLetterTask:
    """The command that dead-letters the task's last dispatch, rebuilt as it was sent: its
    deadline was the lease it was dispatched with (dispatch time + step timeout)."""
    sent = [a for a in task.attempts if a.number == task.attempt]
    failures = [a.finished_at for a in task.attempts if a.outcome in _FAILED and a.finished_at]
    assert sent, f"task {task.id} has no attempt {task.attempt}"
    assert failures, f"task {task.id} has no failed attempt"
    deadline = sent[0].dispatched_at + timedelta(seconds=step.timeout_s)
    return DeadLetterTask(
        DispatchTask(task, deadline),
        error,
        attempts=task.attempt,
        first_failure=min(failures),
        last_failure=max(failures),
    )
