"""Resolving escalations (pure): what a reviewer's decision, or a missed review deadline,
does to the workflow.

A decision is applied once, and only the one the escalation accepted (or, for a pending
escalation, one made on its version and digest), only while the task still waits on what
the escalation shows, and only if the reviewer rules (``review``) allow it. ``approve``
and ``edit`` complete the task, ``retry`` dispatches its next attempt, ``reject`` does
the step's ``on_reject``. A missed deadline does the step's ``review.on_timeout``, which
never approves.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from orchestrator.playbooks.model import Playbook, ReviewPolicy, Step
from orchestrator.workflow.four_eyes import incomplete
from orchestrator.workflow.messages import Decision, DecisionMade, RecordReviewEvent, ReviewDue
from orchestrator.workflow.review import FALLBACK, POLICY_APPROVAL, refuse_action, refuse_stale
from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    TaskError,
    TaskState,
    TaskStatus,
    WorkflowState,
)
from orchestrator.workflow.transitions import Environment, advance, fail_workflow, send

SLA_ACTOR = "waypost:sla"


def review_input(
    state: WorkflowState, event: DecisionMade | ReviewDue, env: Environment
) -> Decision:
    """Apply a reviewer's decision, or an escalation's missed deadline."""
    escalation = state.escalations.get(event.escalation_id)
    if escalation is None:
        return Decision(state, applied=False, note=f"no escalation {event.escalation_id}")
    assert env.playbook is not None
    task = state.tasks[escalation.step]
    step = env.playbook.step(escalation.step)
    if isinstance(event, ReviewDue):
        return review_due(state, escalation, task, step, env)
    decision = event.decision
    problem = unappliable(escalation, event)
    if problem is not None:
        return Decision(state, applied=False, note=f"decision {decision.id}: {problem}")
    if not _waits_on(task, escalation):
        return Decision(
            state,
            applied=False,
            note=f"step {task.step!r} no longer waits on the result this escalation shows",
        )
    refusal = refuse_action(
        escalation, task, step, decision.action, decision.output, decision.reason
    )
    if refusal is not None:
        return Decision(state, applied=False, note=f"decision {decision.id}: {refusal.message}")
    resolved = escalation.evolve(
        status=EscalationStatus.RESOLVED, decision=decision, resolved_at=env.now
    )
    state = state.with_escalation(resolved)
    record = RecordReviewEvent(resolved, "resolved", decision.reviewer, {"action": decision.action})
    if escalation.kind == POLICY_APPROVAL and decision.action in ("approve", "retry"):
        # Run the step again; its dispatch carries every approval of the task
        # (``approvals.granted``), so the approved action is allowed this time. The
        # attempt that asked does not use up the step's retries.
        waiting = task.evolve(
            proposal=None,
            error=None,
            first_valid_attempt=task.attempt + 1,
            max_attempts=task.max_attempts + 1,
        )
        sent, commands = send(state.id, waiting, step, task.input or {}, env)
        return Decision(state.with_task(sent), (record, *commands))
    if decision.action in ("approve", "edit"):
        output = decision.output if decision.action == "edit" else task.proposal
        done = task.evolve(
            status=TaskStatus.COMPLETED,
            output=dict(output or {}),
            proposal=None,
            error=None,
            finished_at=env.now,
        )
        advanced, commands = advance(state.with_task(done), env.playbook, env)
        return Decision(advanced, (record, *commands))
    if decision.action == "retry":
        # One of the step's attempts (the rules refused a retry with none left).
        waiting = task.evolve(proposal=None, first_valid_attempt=task.attempt + 1)
        if escalation.kind == FALLBACK:
            # Every attempt failed: run the step again from its own capability, with its
            # whole retry budget (and its fallback after that).
            waiting = waiting.evolve(
                capability=step.capability,
                max_attempts=task.attempt + step.max_attempts,
                error=None,
            )
        sent, commands = send(state.id, waiting, step, task.input or {}, env)
        return Decision(state.with_task(sent), (record, *commands))
    assert decision.action == "reject", decision.action
    why = f"reviewer {decision.reviewer} rejected step {task.step!r}: {decision.reason}"
    return rejected(state, task, step, why, record, env)


def unappliable(escalation: EscalationState, event: DecisionMade) -> str | None:
    """Why this decision is not the escalation's to apply (None when it is): the one it
    accepted, not yet applied, or one made on the pending escalation as it is (and, for
    an escalation that needs several reviewers, not an approval: ``four_eyes``)."""
    accepted = escalation.decision
    if accepted is not None and accepted.id == event.decision.id:
        resolved = escalation.status is EscalationStatus.RESOLVED
        return "the escalation is already resolved" if resolved else None
    stale = refuse_stale(escalation, event.version, event.digest)
    if stale is not None:
        return stale.message
    return incomplete(escalation, event.decision)


def _waits_on(task: TaskState, escalation: EscalationState) -> bool:
    """Whether the task still waits on what the escalation shows."""
    if task.status is not TaskStatus.AWAITING_REVIEW:
        return False
    if escalation.kind in (FALLBACK, POLICY_APPROVAL):
        return task.proposal is None and task.attempt == escalation.attempt
    return dict(task.proposal or {}) == escalation.content.get("output")


def rejected(
    state: WorkflowState,
    task: TaskState,
    step: Step,
    why: str,
    record: RecordReviewEvent,
    env: Environment,
) -> Decision:
    """The step's ``on_reject``: fail the workflow, skip the step, or go back to a step."""
    assert env.playbook is not None
    on_reject = step.on_reject
    if on_reject.action == "fail":
        error = TaskError("Rejected", why, retryable=False)
        failed = task.evolve(
            status=TaskStatus.FAILED, error=error, proposal=None, finished_at=env.now
        )
        decision = fail_workflow(state.with_task(failed), why, env, step=task.step, error=error)
        return Decision(decision.state, (record, *decision.commands))
    if on_reject.action == "skip":
        skipped = task.evolve(status=TaskStatus.SKIPPED, proposal=None, finished_at=env.now)
        advanced, commands = advance(state.with_task(skipped), env.playbook, env)
        return Decision(advanced, (record, *commands))
    assert on_reject.goto is not None
    reset = reset_from(state, env.playbook, on_reject.goto, env.now)
    advanced, commands = advance(reset, env.playbook, env)
    return Decision(advanced, (record, *commands))


def reset_from(
    state: WorkflowState, playbook: Playbook, target: str, now: datetime
) -> WorkflowState:
    """Put ``target`` and every step downstream of it back to pending (attempts kept) and
    close their open escalations."""
    downstream = {target}
    changed = True
    while changed:
        changed = False
        for step in playbook.steps:
            if step.name not in downstream and downstream & set(step.depends_on):
                downstream.add(step.name)
                changed = True
    for name in downstream:
        task = state.tasks[name]
        state = state.with_task(
            task.evolve(
                status=TaskStatus.PENDING,
                capability=playbook.step(name).capability,
                output=None,
                proposal=None,
                confidence=None,
                error=None,
                lease_expires_at=None,
                next_attempt_at=None,
                finished_at=None,
                # A new run of the step gets its whole retry budget again, and results of
                # the earlier run (still in flight) no longer count.
                max_attempts=task.attempt + playbook.step(name).max_attempts,
                first_valid_attempt=task.attempt + 1,
            )
        )
    for escalation in list(state.escalations.values()):
        if escalation.step in downstream and escalation.status is not EscalationStatus.RESOLVED:
            # The result it shows is gone: nobody may decide it any more.
            state = state.with_escalation(
                escalation.evolve(status=EscalationStatus.RESOLVED, resolved_at=now)
            )
    return state


def review_due(
    state: WorkflowState,
    escalation: EscalationState,
    task: TaskState,
    step: Step,
    env: Environment,
) -> Decision:
    """The escalation's deadline passed: do the step's ``review.on_timeout``."""
    return missed_deadline(
        state,
        escalation,
        step.review,
        env,
        what=f"step {task.step!r}",
        reject=lambda rejecting, record, why: rejected(rejecting, task, step, why, record, env),
    )


def missed_deadline(
    state: WorkflowState,
    escalation: EscalationState,
    policy: ReviewPolicy,
    env: Environment,
    *,
    what: str,
    reject: Callable[[WorkflowState, RecordReviewEvent, str], Decision],
) -> Decision:
    """An escalation's deadline passed: ``policy.on_timeout`` moves it to another group,
    ``reject`` s it (given the workflow with the escalation resolved, its audit record and
    the reason), or marks it overdue; never approves. ``what`` the reviewer did not
    decide, for the reason."""
    if (
        escalation.status is not EscalationStatus.PENDING
        or escalation.overdue
        or escalation.due_at > env.now
    ):
        return Decision(state, applied=False, note=f"escalation {escalation.id} is not due")
    detail = {"action": policy.on_timeout, "sla_s": policy.sla_s}
    if policy.on_timeout == "reassign" and policy.timeout_group:
        due = env.now + timedelta(seconds=policy.sla_s)
        moved = escalation.evolve(
            group=policy.timeout_group,
            assignee=None,
            claimed_at=None,
            version=escalation.version + 1,
            due_at=due,
            warn_at=due - timedelta(seconds=policy.warning_s),
        )
        record = RecordReviewEvent(
            moved, "sla_timeout", SLA_ACTOR, {**detail, "group": policy.timeout_group}
        )
        return Decision(state.with_escalation(moved), (record,))
    if policy.on_timeout == "reject":
        resolved = escalation.evolve(status=EscalationStatus.RESOLVED, resolved_at=env.now)
        record = RecordReviewEvent(resolved, "sla_timeout", SLA_ACTOR, detail)
        why = f"no reviewer decided {what} within its SLA of {policy.sla_s:g} s"
        return reject(state.with_escalation(resolved), record, why)
    # Waiting on: never approve by timeout, only show the escalation as overdue.
    overdue = escalation.evolve(overdue=True)
    record = RecordReviewEvent(overdue, "sla_timeout", SLA_ACTOR, detail)
    return Decision(state.with_escalation(overdue), (record,))
