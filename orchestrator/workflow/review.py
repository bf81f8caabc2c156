"""Escalations (pure): when a result waits for a human, exactly what the reviewer is
shown, whether a decision may be applied, and what decisions and missed deadlines do."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from orchestrator.playbooks.model import Playbook, Step
from orchestrator.workflow.messages import (
    Decision,
    DecisionMade,
    RecordReviewEvent,
    ReviewDue,
    TaskSucceeded,
)
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
# The kind of the escalation that asks a person for a step's output after every attempt
# failed (the human fallback): there is no output to approve.
FALLBACK = "fallback"
FALLBACK_ACTIONS = ("edit", "retry", "reject")
# The kind of the escalation that asks a person to approve an action a governance policy
# holds for approval (``approvals``): approving runs the step again with the approval;
# there is no output to edit.
POLICY_APPROVAL = "policy_approval"
POLICY_APPROVAL_ACTIONS = ("approve", "retry", "reject")
_NAMESPACE = uuid.UUID("9a3c0f4e-7f0b-4f0e-9e7b-2f6d1c8a5b13")


def canonical_digest(content: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of what a reviewer is shown (sorted keys, no spaces)."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def escalation_id(task_id: str, number: int) -> str:
    """The id of a task's ``number``-th escalation (stable across redeliveries)."""
    return str(uuid.uuid5(_NAMESPACE, f"{task_id}#{number}"))


def review_needed(step: Step, result: TaskSucceeded) -> tuple[str, str] | None:
    """(kind, reason) when a result must wait for a reviewer, else None."""
    kinds: list[str] = []
    reasons: list[str] = []
    if result.escalate:
        kinds.append("agent_request")
        reasons.append(f"the agent asked for a human: {result.escalate}")
    if step.escalate_below is not None and result.confidence < step.escalate_below:
        kinds.append("low_confidence")
        reasons.append(
            f"confidence {result.confidence:.2f} is below the step's threshold "
            f"{step.escalate_below:.2f}"
        )
    if step.requires_approval:
        kinds.append("approval")
        reasons.append("the step requires a reviewer's approval")
    return (kinds[0], "; ".join(reasons)) if kinds else None


def open_escalation(
    state: WorkflowState,
    task: TaskState,
    step: Step,
    result: TaskSucceeded,
    kind: str,
    reason: str,
    now: datetime,
) -> EscalationState:
    """A new pending escalation of ``result``, at version 1, with its SLA deadline."""
    shown = {
        "output": dict(result.output),
        "confidence": result.confidence,
        "reasoning": list(result.reasoning),
    }
    return new_escalation(
        state, task, step, attempt=result.attempt, kind=kind, reason=reason, shown=shown, now=now
    )


def new_escalation(
    state: WorkflowState,
    task: TaskState,
    step: Step,
    *,
    attempt: int,
    kind: str,
    reason: str,
    shown: Mapping[str, Any],
    now: datetime,
) -> EscalationState:
    """A pending escalation of a task at version 1, with its SLA deadline; its content is
    the task's context plus ``shown`` (the output and whatever else the reviewer needs)."""
    content = {
        "workflow_id": state.id,
        "goal_type": state.type,
        "step": task.step,
        "capability": task.capability,
        "attempt": attempt,
        "goal_input": dict(state.input),
        "task_input": dict(task.input or {}),
        **shown,
        "reason": reason,
    }
    number = 1 + sum(1 for e in state.escalations.values() if e.task_id == task.id)
    due = now + timedelta(seconds=step.review.sla_s)
    return EscalationState(
        id=escalation_id(task.id, number),
        task_id=task.id,
        step=task.step,
        attempt=attempt,
        kind=kind,
        reason=reason,
        status=EscalationStatus.PENDING,
        priority=step.review.priority,
        group=step.review.group,
        version=1,
        digest=canonical_digest(content),
        content=content,
        opened_at=now,
        due_at=due,
        warn_at=due - timedelta(seconds=step.review.warning_s),
    )


def decision_problem(escalation: EscalationState, event: DecisionMade) -> str | None:
    """Why a decision cannot be applied to an escalation (None when it can)."""
    if escalation.status is EscalationStatus.RESOLVED:
        return "the escalation is already resolved"
    if escalation.status is EscalationStatus.DECIDED:
        accepted = escalation.decision
        if accepted is not None and accepted.id == event.decision.id:
            return None
        return "another decision on this escalation was accepted first"
    if event.version != escalation.version:
        return (
            f"the decision was made on version {event.version}; "
            f"the escalation is at version {escalation.version}"
        )
    if event.digest != escalation.digest:
        return "the decision was made on other content than the escalation shows (digest)"
    return None


def review_input(
    state: WorkflowState, event: DecisionMade | ReviewDue, env: Environment
) -> Decision:
    escalation = state.escalations.get(event.escalation_id)
    if escalation is None:
        return Decision(state, applied=False, note=f"no escalation {event.escalation_id}")
    assert env.playbook is not None
    task = state.tasks[escalation.step]
    step = env.playbook.step(escalation.step)
    if isinstance(event, ReviewDue):
        return review_due(state, escalation, task, step, env)
    problem = decision_problem(escalation, event)
    if problem is not None:
        return Decision(state, applied=False, note=f"decision {event.decision.id}: {problem}")
    if not _waits_on(task, escalation):
        return Decision(
            state,
            applied=False,
            note=f"step {task.step!r} no longer waits on the result this escalation shows",
        )
    decision = event.decision
    if escalation.kind == FALLBACK and decision.action not in FALLBACK_ACTIONS:
        return Decision(
            state,
            applied=False,
            note=f"decision {decision.id}: every attempt of step {task.step!r} failed, so "
            "there is no output to approve; edit (supply the output), retry or reject",
        )
    if escalation.kind == POLICY_APPROVAL and decision.action not in POLICY_APPROVAL_ACTIONS:
        return Decision(
            state,
            applied=False,
            note=f"decision {decision.id}: step {task.step!r} waits for the approval of an "
            "action and has no output to edit; approve, retry or reject",
        )
    if decision.action == "edit":
        problems = step.output_problems(decision.output)
        if problems:
            note = "; ".join(f"{where}: {message}" for where, message in problems)
            return Decision(state, applied=False, note=f"edited output is invalid: {note}")
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
    why = f"reviewer {decision.reviewer} rejected step {task.step!r}: {decision.reason or '-'}"
    return rejected(state, task, step, why, record, env)


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
    if (
        escalation.status is not EscalationStatus.PENDING
        or escalation.overdue
        or escalation.due_at > env.now
    ):
        return Decision(state, applied=False, note=f"escalation {escalation.id} is not due")
    policy = step.review
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
        why = f"no reviewer decided step {task.step!r} within its SLA of {policy.sla_s:g} s"
        return rejected(state.with_escalation(resolved), task, step, why, record, env)
    # Waiting on: never approve by timeout, only show the escalation as overdue.
    overdue = escalation.evolve(overdue=True)
    record = RecordReviewEvent(overdue, "sla_timeout", SLA_ACTOR, detail)
    return Decision(state.with_escalation(overdue), (record,))
