"""Operating a workflow by hand (pure): retry a failed step, resume a failed workflow from
a step. The third operation, cancelling, is ``cancellation``.

- **Retry** a failed step of a running or failed workflow: the step runs again, a new
  attempt with a whole retry budget (its fallback after that, as on its first run), on its
  last input or on an edited one.
- **Resume** a failed workflow from a step: that step and every step downstream of it are
  pending again, as are the steps the failure cancelled; the step runs on its mapped input
  (as the playbook computes it now) or on an edited one, and the rest follows as usual.

Either way a failed workflow runs again: its failure (reason, failed step, error, dead
letter, end time) is forgotten. Results of attempts from before the operation no longer
count (``TaskState.first_valid_attempt``): a late one is ignored. An edited input is used
exactly, for this run of the step (it is stored as the task's input, which its retries
reuse); the adapter checks it against the capability's input schema, when one is known,
and passes what it found in the request.

The rules (``refuse_retry``, ``refuse_resume``) answer with a ``Refused`` whose message,
worded once here, says what to do; the adapter (``orchestrator/operations.py``) asks them
before it changes anything, and turns a refusal into a 404, 409 or 422.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.playbooks.model import Playbook
from orchestrator.workflow.messages import Command, Decision, ResumeRequested, RetryRequested
from orchestrator.workflow.resolution import reset_from
from orchestrator.workflow.state import TaskState, TaskStatus, WorkflowState, WorkflowStatus
from orchestrator.workflow.transitions import Environment, advance, send

# unknown_step: no such step in the workflow; conflict: the workflow or step is not in a
# state the operation applies to (look again); invalid: the request itself is wrong.
RefusalKind = Literal["unknown_step", "conflict", "invalid"]


@dataclass(frozen=True, slots=True)
class Refused:
    """Why an operation cannot be carried out, in the words the operator reads;
    ``detail`` holds what they need to act on it: the input's schema errors, as the
    API's problem documents list them (``errors``: field and message each)."""

    message: str
    kind: RefusalKind
    detail: Mapping[str, Any] = field(default_factory=dict)


def refuse_retry(
    state: WorkflowState, request: RetryRequested, playbook: Playbook | None
) -> Refused | None:
    """May the step be retried? Only a failed step of a running or failed workflow, on an
    input that is a JSON object fitting its capability's input schema."""
    if state.status not in (WorkflowStatus.RUNNING, WorkflowStatus.FAILED):
        return _wrong_status(state, "only a step of a running or failed workflow can be retried")
    task = state.tasks.get(request.step)
    if task is None:
        return _unknown_step(state, request.step)
    if task.status is not TaskStatus.FAILED:
        hint = (
            "; to run it again, resume the workflow from it"
            if state.status is WorkflowStatus.FAILED
            else ""
        )
        return Refused(
            f"step {task.step!r} is {task.status}; only a failed step can be retried{hint}",
            "conflict",
        )
    return _refuse_playbook(state, playbook) or _refuse_input(request)


def refuse_resume(
    state: WorkflowState, request: ResumeRequested, playbook: Playbook | None
) -> Refused | None:
    """May the workflow be resumed from the step? Only a failed workflow, from a step that
    runs again every step that failed, on an input that is a JSON object fitting the
    capability's input schema and only for a step that can run at once."""
    if state.status is not WorkflowStatus.FAILED:
        return _wrong_status(state, "only a failed workflow can be resumed")
    if request.step not in state.tasks:
        return _unknown_step(state, request.step)
    refused = _refuse_playbook(state, playbook)
    if refused is not None:
        return refused
    assert playbook is not None
    again = downstream_of(playbook, request.step)
    left = sorted(name for name, t in state.tasks.items() if t.status is TaskStatus.FAILED)
    behind = [name for name in left if name not in again]
    if behind:
        return Refused(
            f"step {behind[0]!r} failed and resuming from {request.step!r} does not run it "
            f"again; resume from {behind[0]!r} or a step it depends on",
            "invalid",
        )
    if request.input is not None:
        waiting = [
            name
            for name in playbook.step(request.step).depends_on
            if not state.tasks[name].status.succeeded
        ]
        if waiting:
            return Refused(
                f"an edited input is for a step that runs at once, but step {request.step!r} "
                f"waits for {', '.join(repr(n) for n in waiting)}; resume without an edited "
                "input, or from a step it waits for",
                "invalid",
            )
    return _refuse_input(request)


def retry_step(state: WorkflowState, request: RetryRequested, env: Environment) -> Decision:
    """Run a failed step again (and, in a failed workflow, the steps its failure
    cancelled). A refused request changes nothing (``applied`` False, ``note`` says why)."""
    refused = refuse_retry(state, request, env.playbook)
    if refused is not None:
        return Decision(state, applied=False, note=refused.message)
    playbook = env.playbook
    assert playbook is not None
    running = _running_again(state, playbook)
    task, step = running.tasks[request.step], playbook.step(request.step)
    task_input = request.input if request.input is not None else (task.input or {})
    sent, commands = send(running.id, _new_run(task, playbook), step, task_input, env)
    advanced, more = advance(running.with_task(sent), playbook, env)
    return Decision(advanced, (*commands, *more))


def resume_from(state: WorkflowState, request: ResumeRequested, env: Environment) -> Decision:
    """Run a failed workflow again from a step. A refused request changes nothing
    (``applied`` False, ``note`` says why)."""
    refused = refuse_resume(state, request, env.playbook)
    if refused is not None:
        return Decision(state, applied=False, note=refused.message)
    playbook = env.playbook
    assert playbook is not None
    running = reset_from(_running_again(state, playbook), playbook, request.step, env.now)
    commands: tuple[Command, ...] = ()
    if request.input is not None:
        # Sent as given: not mapped, and whatever the step's `when` would say.
        task, step = running.tasks[request.step], playbook.step(request.step)
        sent, commands = send(running.id, task, step, request.input, env)
        running = running.with_task(sent)
    advanced, more = advance(running, playbook, env)
    return Decision(advanced, (*commands, *more))


def downstream_of(playbook: Playbook, name: str) -> set[str]:
    """The step called ``name`` and every step that depends on it, directly or not."""
    found = {name}
    grew = True
    while grew:
        grew = False
        for step in playbook.steps:
            if step.name not in found and found & set(step.depends_on):
                found.add(step.name)
                grew = True
    return found


def _running_again(state: WorkflowState, playbook: Playbook) -> WorkflowState:
    """A failed workflow running again: its failure forgotten, every task its failure
    cancelled pending again as a new run. A running workflow as it is."""
    if state.status is not WorkflowStatus.FAILED:
        return state
    tasks = {
        name: _new_run(task, playbook) if task.status is TaskStatus.CANCELLED else task
        for name, task in state.tasks.items()
    }
    return state.evolve(
        status=WorkflowStatus.RUNNING,
        tasks=tasks,
        output=None,
        reason=None,
        failed_step=None,
        error=None,
        finished_at=None,
        dead_letter=None,
    )


def _new_run(task: TaskState, playbook: Playbook) -> TaskState:
    """The task pending again for a new run: on its step's own capability, with a whole
    retry budget, results of earlier attempts no longer counting."""
    step = playbook.step(task.step)
    return task.evolve(
        status=TaskStatus.PENDING,
        capability=step.capability,
        output=None,
        proposal=None,
        confidence=None,
        error=None,
        lease_expires_at=None,
        next_attempt_at=None,
        finished_at=None,
        max_attempts=task.attempt + step.max_attempts,
        first_valid_attempt=task.attempt + 1,
    )


def _wrong_status(state: WorkflowState, rule: str) -> Refused:
    if state.status.finished:
        what = f"workflow {state.id} is already {state.status}"
    elif state.status is WorkflowStatus.RUNNING:
        what = f"workflow {state.id} is running"
    else:
        what = f"workflow {state.id} is {state.status}: its steps have not started"
    return Refused(f"{what}; {rule}", "conflict")


def _unknown_step(state: WorkflowState, name: str) -> Refused:
    if not state.tasks:
        return Refused(
            f"workflow {state.id} has no steps: it failed before it was planned "
            f"({state.reason or 'no reason given'})",
            "unknown_step",
        )
    return Refused(
        f"workflow {state.id} has no step {name!r}; its steps are: {', '.join(state.tasks)}",
        "unknown_step",
    )


def _refuse_playbook(state: WorkflowState, playbook: Playbook | None) -> Refused | None:
    if playbook is not None:
        if playbook.digest and state.playbook_digest and playbook.digest != state.playbook_digest:
            # The adapter must hand over the version that planned this workflow.
            raise ValueError(f"workflow {state.id} was planned by playbook {state.playbook_digest}")
        return None
    return Refused(
        f"the playbook version that planned workflow {state.id} is gone, so its steps "
        "cannot run again",
        "conflict",
    )


def _refuse_input(request: RetryRequested | ResumeRequested) -> Refused | None:
    if request.input is None:
        return None
    if not isinstance(request.input, Mapping):
        return Refused("the edited input must be a JSON object ({...})", "invalid")
    if not request.input_problems:
        return None
    return Refused(
        f"the edited input breaks the input schema of step {request.step!r}: "
        + "; ".join(f"{where}: {message}" for where, message in request.input_problems),
        "invalid",
        {"errors": [{"field": where, "message": m} for where, m in request.input_problems]},
    )
