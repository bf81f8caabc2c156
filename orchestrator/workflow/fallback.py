"""When a task cannot succeed where it is (pure): its step's fallback capability takes it,
or, once every attempt failed, a person (the human fallback) or the dead-letter path.

- Its own capability's attempts ran out, or it failed in a way retrying cannot fix: the
  step's ``fallback`` gets the task at once, with the fallback's own attempts (through
  the fallback's circuit, see ``transitions.send``).
- Nothing left to try (no fallback, or the fallback's attempts ran out too): with
  ``on_failure: escalate`` the task waits for a reviewer in an escalation of kind
  ``fallback``, who supplies the output (edit), has the step run again (retry) or rejects
  it (``on_reject``); with ``on_failure: fail`` (the default) the last dispatch is
  dead-lettered and the workflow fails pointing to it (``dead_letters.exhausted``).
"""

from __future__ import annotations

from orchestrator.playbooks.model import Step
from orchestrator.workflow.dead_letters import exhausted
from orchestrator.workflow.escalation import escalate
from orchestrator.workflow.messages import Decision
from orchestrator.workflow.review import FALLBACK
from orchestrator.workflow.state import TaskError, TaskState, TaskStatus, WorkflowState
from orchestrator.workflow.transitions import Environment, send, to_fallback


def cannot_go_on(
    state: WorkflowState, task: TaskState, step: Step, error: TaskError, env: Environment
) -> Decision:
    """``task`` (its last attempt closed with ``error``) cannot succeed on its capability:
    move it to the fallback, or escalate or fail when every attempt failed."""
    ended = task.evolve(error=error, lease_expires_at=None)
    if step.fallback is not None and task.capability == step.capability:
        sent, commands = send(state.id, to_fallback(ended, step), step, task.input or {}, env)
        return Decision(state.with_task(sent), commands)
    if step.on_failure == "escalate":
        return ask_a_person(state, ended, step, error, env)
    failed = ended.evolve(status=TaskStatus.FAILED, finished_at=env.now)
    return exhausted(state, failed, step, error, env)


def ask_a_person(
    state: WorkflowState, task: TaskState, step: Step, error: TaskError, env: Environment
) -> Decision:
    """Every attempt failed: the task waits for a reviewer to supply its output, retry
    the step, or reject it."""
    reason = (
        f"every attempt failed: {error.type}: {error.message}; decide: retry, edit an "
        "output by hand, or reject"
    )
    shown = {
        "output": None,
        "confidence": None,
        "reasoning": [],
        "error": error.as_dict(),
        "attempts": [
            {
                "number": a.number,
                "capability": a.capability or step.capability,
                "outcome": a.outcome,
                "error": a.error.as_dict() if a.error else None,
            }
            for a in task.attempts
        ],
    }
    return escalate(
        state,
        task.evolve(proposal=None),
        step,
        attempt=task.attempt,
        kind=FALLBACK,
        reason=reason,
        shown=shown,
        now=env.now,
    )
