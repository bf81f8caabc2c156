"""The workflow state machine: (state, input) -> new state + commands. Pure: no I/O.

Steps run once every step they depend on completed or was skipped; a step whose
``when`` is false is skipped; independent steps run in parallel (fan-out) and a step
with several dependencies waits for all of them (fan-in). A failed attempt is retried
with backoff while attempts remain and the error is retryable; then the step's fallback
capability takes the task, and when every attempt failed the step's ``on_failure`` asks a
person for the output or fails the workflow: the task's last dispatch is dead-lettered and
the reason names the step, the last error and the dead letter, whose replay resumes it
(``fallback``, ``dead_letters``). Every dispatch passes its capability's circuit breaker
(``breaker``), and every attempt's outcome is reported to it. An attempt that stopped at
an action a governance policy holds for approval waits for a reviewer (``approvals``).
Results are applied at most once: the first result for an open task wins, anything
later is reported as not applied. A person may retry a failed step, or resume a failed
workflow from a step (``operations``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from orchestrator.playbooks.model import Step
from orchestrator.workflow.approvals import approval_needed
from orchestrator.workflow.dead_letters import failed_again, reopen, replayed_task
from orchestrator.workflow.escalation import escalate
from orchestrator.workflow.fallback import cannot_go_on
from orchestrator.workflow.messages import (
    Decision,
    DecisionMade,
    GoalAccepted,
    Input,
    LeaseExpired,
    PlanFailed,
    PlanReady,
    ResumeRequested,
    RetryDue,
    RetryRequested,
    ReviewDue,
    TaskAttemptFailed,
    TaskSucceeded,
)
from orchestrator.workflow.operations import resume_from, retry_step
from orchestrator.workflow.planning import (
    PLAN,
    plan_failed,
    plan_ready,
    plan_review,
    request_plan,
)
from orchestrator.workflow.resolution import review_input
from orchestrator.workflow.retry import RetryPolicy
from orchestrator.workflow.review import review_needed
from orchestrator.workflow.state import (
    EscalationStatus,
    TaskError,
    TaskState,
    TaskStatus,
    WorkflowState,
    WorkflowStatus,
)
from orchestrator.workflow.transitions import (
    Environment,
    advance,
    attempt_capability,
    begin,
    close_attempt,
    dispatch_id,
    fail_workflow,
    record_success,
    send,
    stale,
    task_id,
)

__all__ = ["Environment", "decide", "dispatch_id", "due_timers", "task_id"]

RATE_LIMITED = "RateLimited"  # the error type of an action a governance rate limit held


def decide(state: WorkflowState, event: Input, env: Environment) -> Decision:
    """Apply one input to a workflow."""
    if isinstance(event, GoalAccepted):
        return _plan(state, env)
    # A person's operations: they apply to a failed workflow too (``operations``).
    if isinstance(event, RetryRequested):
        return retry_step(state, event, env)
    if isinstance(event, ResumeRequested):
        return resume_from(state, event, env)
    replayed = replayed_task(state, event)
    if state.status.finished and replayed is None:
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
    if replayed is not None:
        return _replayed(state, replayed, event, env)
    if isinstance(event, PlanReady):
        return plan_ready(state, event, env)
    if isinstance(event, PlanFailed):
        return plan_failed(state, event, env)
    if isinstance(event, DecisionMade | ReviewDue):
        escalation = state.escalations.get(event.escalation_id)
        if escalation is not None and escalation.kind == PLAN:
            return plan_review(state, escalation, event, env)
        return review_input(state, event, env)
    task = state.task_by_id(event.task_id)
    if task is None:
        return Decision(state, applied=False, note=f"task {event.task_id} is not in this workflow")
    step = env.playbook.step(task.step)
    if isinstance(event, TaskSucceeded):
        return _succeeded(state, task, event, env)
    if isinstance(event, TaskAttemptFailed):
        if task.status is not TaskStatus.DISPATCHED or event.attempt != task.attempt:
            return stale(task, event.attempt, state)
        if event.approval is not None:
            return approval_needed(state, task, step, event, env)
        return _failed(state, task, step, event.error, "failed", env)
    if isinstance(event, LeaseExpired):
        if (
            task.status is not TaskStatus.DISPATCHED
            or event.attempt != task.attempt
            or task.lease_expires_at is None
            or task.lease_expires_at > env.now
        ):
            return stale(task, event.attempt, state)
        if event.undelivered:
            # The dispatch never reached the broker: wait for it, do not spend an attempt.
            extended = task.evolve(lease_expires_at=env.now + timedelta(seconds=step.timeout_s))
            return Decision(state.with_task(extended))
        error = TaskError("LeaseExpired", f"no result within {step.timeout_s:g} s of dispatch")
        return _failed(state, task, step, error, "lease_expired", env)
    assert isinstance(event, RetryDue)
    if (
        task.status is not TaskStatus.RETRY_WAIT
        or task.next_attempt_at is None
        or task.next_attempt_at > env.now
    ):
        return Decision(state, applied=False, note=f"task {task.step} has no retry due")
    sent, commands = send(state.id, task, step, task.input or {}, env)
    return Decision(state.with_task(sent), commands)


def _plan(state: WorkflowState, env: Environment) -> Decision:
    if state.status is not WorkflowStatus.ACCEPTED:
        return Decision(state, applied=False, note="goal already planned")
    playbook = env.playbook
    if playbook is None:
        known = ", ".join(env.known_types) or "none"
        return fail_workflow(
            state, f"no playbook for goal type {state.type!r} (known: {known})", env
        )
    errors = playbook.input_errors(dict(state.input))
    if errors:
        return fail_workflow(state, "goal input is invalid: " + "; ".join(errors), env)
    if playbook.planning is not None:
        return request_plan(state, env)
    return begin(state, playbook, env)


def _replayed(state: WorkflowState, task: TaskState, event: Input, env: Environment) -> Decision:
    """A result of the dead-lettered attempt (a replay ran it). A success resumes the
    workflow and runs again the steps its failure cancelled, and may wait for a reviewer
    like any result; so does an attempt that stopped at an action needing approval. A
    failure dead-letters the attempt again."""
    assert env.playbook is not None
    step = env.playbook.step(task.step)
    if isinstance(event, TaskAttemptFailed) and event.approval is None:
        return failed_again(state, task, step, event.error, env)
    assert isinstance(event, TaskSucceeded | TaskAttemptFailed)
    # Steps that do not wait on this one are dispatched now.
    reopened, dispatches = advance(reopen(state, env.playbook, task), env.playbook, env)
    task = reopened.tasks[task.step]
    if isinstance(event, TaskAttemptFailed):
        decision = approval_needed(reopened, task, step, event, env)
    else:
        decision = _accept(reopened, task, event, env)
    return Decision(decision.state, (*dispatches, *decision.commands))


def _succeeded(
    state: WorkflowState, task: TaskState, event: TaskSucceeded, env: Environment
) -> Decision:
    open_states = (TaskStatus.DISPATCHED, TaskStatus.RETRY_WAIT)
    if task.status not in open_states or not (
        task.first_valid_attempt <= event.attempt <= task.attempt
    ):
        return stale(task, event.attempt, state)
    return _accept(state, task, event, env)


def _accept(
    state: WorkflowState, task: TaskState, event: TaskSucceeded, env: Environment
) -> Decision:
    """Apply an output: it completes the task, or waits for a reviewer if it must."""
    assert env.playbook is not None
    step = env.playbook.step(task.step)
    env.circuits.record(
        "succeeded",
        attempt_capability(task, step, event.attempt),
        workflow_id=state.id,
        task_id=task.id,
        now=env.now,
    )
    attempts = record_success(task.attempts, event.attempt, env.now)
    review = review_needed(step, event)
    if review is not None:
        kind, reason = review
        waiting = task.evolve(
            proposal=dict(event.output),
            confidence=event.confidence,
            reasoning=event.reasoning,
            usage=event.usage,
            agent=event.agent,
            error=None,
            attempts=attempts,
        )
        shown = {
            "output": dict(event.output),
            "confidence": event.confidence,
            "reasoning": list(event.reasoning),
        }
        return escalate(
            state,
            waiting,
            step,
            attempt=event.attempt,
            kind=kind,
            reason=reason,
            shown=shown,
            now=env.now,
        )
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
        attempts=attempts,
    )
    advanced, commands = advance(state.with_task(done), env.playbook, env)
    return Decision(advanced, commands)


def _failed(
    state: WorkflowState,
    task: TaskState,
    step: Step,
    error: TaskError,
    outcome: str,
    env: Environment,
) -> Decision:
    # A failure retrying cannot fix is about the input, not the capability's health; nor
    # is a governance rate limit (the agent was held back, nothing broke).
    env.circuits.record(
        "failed" if error.retryable and error.type != RATE_LIMITED else "released",
        attempt_capability(task, step, task.attempt),
        workflow_id=state.id,
        task_id=task.id,
        now=env.now,
        error=f"{error.type}: {error.message}",
    )
    attempts = close_attempt(task.attempts, task.attempt, env.now, outcome, error)
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
    return cannot_go_on(state, task.evolve(attempts=attempts), step, error, env)


def due_timers(
    state: WorkflowState,
    now: datetime,
    *,
    decision_grace_s: float = 10.0,
    undelivered: frozenset[str] = frozenset(),
) -> list[Input]:
    """The timers of a workflow due at ``now``: lease expiries, retries, review deadlines,
    and decisions a reviewer made that the orchestrator has not applied after the grace
    period (their event was lost). ``undelivered``: ids of tasks whose dispatch is still
    in the outbox."""
    due: list[Input] = []
    for escalation in state.escalations.values():
        if (
            escalation.status is EscalationStatus.PENDING
            and not escalation.overdue
            and escalation.due_at <= now
        ):
            due.append(ReviewDue(escalation.id))
        decision = escalation.decision
        if (
            escalation.status is EscalationStatus.DECIDED
            and decision is not None
            and decision.decided_at <= now - timedelta(seconds=decision_grace_s)
        ):
            due.append(DecisionMade(escalation.id, decision, escalation.version, escalation.digest))
    for task in state.tasks.values():
        if (
            task.status is TaskStatus.DISPATCHED
            and task.lease_expires_at is not None
            and task.lease_expires_at <= now
        ):
            due.append(LeaseExpired(task.id, task.attempt, task.id in undelivered))
        elif (
            task.status is TaskStatus.RETRY_WAIT
            and task.next_attempt_at is not None
            and task.next_attempt_at <= now
        ):
            due.append(RetryDue(task.id))
    return due
