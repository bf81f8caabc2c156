"""Workflows an LLM plans (pure): from a goal to a plan that runs.

A goal of a type with ``planner: llm`` is not started from steps: the workflow waits as
``planning`` while the planner (``orchestrator/planning/``) asks a model for a plan and
checks it. A plan that passed (``PlanReady``) starts the workflow on the playbook version
it makes, which is stored (``StorePlan``) so every later input finds it, like any
playbook version. When the goal type's ``planning.requires_approval`` is set, the plan
first waits for a reviewer as a ``plan`` escalation whose content shows the plan: approve
runs it, edit runs the reviewer's plan (checked again here, structurally; the console
checked it against the catalogue), reject fails the workflow with the reason. A missed
deadline does ``planning.review.on_timeout`` (never approves). A planner that gave up
(``PlanFailed``) fails the workflow with its reasons.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from orchestrator.planning.plans import check_plan
from orchestrator.playbooks.model import PLANNER, Planning, Playbook
from orchestrator.workflow.escalation import OPENED_BY, canonical_digest, escalation_id
from orchestrator.workflow.messages import (
    AnnounceTaskEscalated,
    Decision,
    DecisionMade,
    PlanFailed,
    PlanReady,
    RecordReviewEvent,
    ReviewDue,
    StorePlan,
)
from orchestrator.workflow.resolution import missed_deadline, unappliable
from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    WorkflowState,
    WorkflowStatus,
)
from orchestrator.workflow.transitions import Environment, begin, fail_workflow

PLAN = "plan"  # the kind of the escalation that asks a reviewer to approve a plan
PLAN_STEP = "plan"  # what a plan escalation names as its step
PLAN_ACTIONS = ("approve", "edit", "reject")
_NAMESPACE = uuid.UUID("0b6a8e52-3f1d-4c7a-9d25-6e4f8a1c2b37")


def plan_task_id(workflow_id: str) -> str:
    """The id a workflow's plan escalations hang on (in place of a task's)."""
    return str(uuid.uuid5(_NAMESPACE, f"{workflow_id}/plan"))


def request_plan(state: WorkflowState, env: Environment) -> Decision:
    """The goal is valid and its type is planned by the LLM planner: wait for a plan."""
    return Decision(state.evolve(status=WorkflowStatus.PLANNING, started_at=env.now))


def open_plan_escalation(state: WorkflowState) -> EscalationState | None:
    """The plan escalation still waiting for (or applying) a decision, if any."""
    for escalation in state.escalations.values():
        if escalation.kind == PLAN and escalation.status is not EscalationStatus.RESOLVED:
            return escalation
    return None


def plan_ready(state: WorkflowState, event: PlanReady, env: Environment) -> Decision:
    """A checked plan: run it, or ask a reviewer first when the goal type says so."""
    if state.status is not WorkflowStatus.PLANNING or open_plan_escalation(state) is not None:
        return Decision(state, applied=False, note=f"workflow is {state.status}, not planning")
    planning = _planning(env)
    if not planning.requires_approval:
        return begin(state, event.plan, env, first=(StorePlan(event.plan),))
    reason = f"goal type {state.type!r} requires a reviewer to approve each plan"
    content = {
        "workflow_id": state.id,
        "goal_type": state.type,
        "step": PLAN_STEP,
        "capability": PLANNER,
        "attempt": event.attempts,
        "goal_input": dict(state.input),
        "task_input": {},
        "output": plan_of(event.plan),
        "reason": reason,
    }
    task = plan_task_id(state.id)
    number = 1 + sum(1 for e in state.escalations.values() if e.task_id == task)
    review = planning.review
    due = env.now + timedelta(seconds=review.sla_s)
    escalation = EscalationState(
        id=escalation_id(task, number),
        task_id=task,
        step=PLAN_STEP,
        attempt=event.attempts,
        kind=PLAN,
        reason=reason,
        status=EscalationStatus.PENDING,
        priority=review.priority,
        group=review.group,
        version=1,
        digest=canonical_digest(content),
        content=content,
        opened_at=env.now,
        due_at=due,
        warn_at=due - timedelta(seconds=review.warning_s),
        required_approvals=review.approvals,
    )
    return Decision(
        state.with_escalation(escalation),
        (
            AnnounceTaskEscalated(escalation),
            RecordReviewEvent(escalation, "opened", OPENED_BY, {"reason": reason}),
        ),
    )


def plan_failed(state: WorkflowState, event: PlanFailed, env: Environment) -> Decision:
    """The planner gave up: the workflow fails with its reasons."""
    if state.status is not WorkflowStatus.PLANNING or open_plan_escalation(state) is not None:
        return Decision(state, applied=False, note=f"workflow is {state.status}, not planning")
    return fail_workflow(state, f"planning failed: {event.reason}", env)


def plan_review(
    state: WorkflowState,
    escalation: EscalationState,
    event: DecisionMade | ReviewDue,
    env: Environment,
) -> Decision:
    """A reviewer's decision on a plan, or its missed deadline."""
    if isinstance(event, ReviewDue):
        return _plan_review_due(state, escalation, env)
    decision = event.decision
    problem = unappliable(escalation, event) or refuse_plan_action(
        decision.action, decision.output, decision.reason
    )
    if problem is not None:
        return Decision(state, applied=False, note=f"decision {decision.id}: {problem}")
    if state.status is not WorkflowStatus.PLANNING:
        return Decision(state, applied=False, note=f"workflow is {state.status}, not planning")
    resolved = escalation.evolve(
        status=EscalationStatus.RESOLVED, decision=decision, resolved_at=env.now
    )
    state = state.with_escalation(resolved)
    record = RecordReviewEvent(resolved, "resolved", decision.reviewer, {"action": decision.action})
    if decision.action == "reject":
        why = f"reviewer {decision.reviewer} rejected the plan: {decision.reason}"
        failed = fail_workflow(state, why, env)
        return Decision(failed.state, (record, *failed.commands))
    shown = escalation.content.get("output")
    plan = decision.output if decision.action == "edit" else shown
    assert env.playbook is not None
    checked = check_plan(env.playbook, plan, goal_input=state.input, catalogue=None)
    if checked.playbook is None:
        why = f"the plan {decision.reviewer} approved cannot run: " + "; ".join(checked.problems)
        failed = fail_workflow(state, why, env)
        return Decision(failed.state, (record, *failed.commands))
    return begin(state, checked.playbook, env, first=(record, StorePlan(checked.playbook)))


def refuse_plan_action(
    action: str, output: Mapping[str, Any] | None, reason: str | None
) -> str | None:
    """Why a decision cannot be made on a plan (None: it can): approve, edit with the
    edited plan, or reject with a reason."""
    if action not in PLAN_ACTIONS:
        return f"a plan is approved, edited or rejected; {action!r} is not one of those"
    if action == "edit" and output is None:
        return "an edit needs the edited plan"
    if action == "reject" and not (reason or "").strip():
        return "a rejection needs a reason"
    return None


def plan_of(playbook: Playbook) -> dict[str, Any]:
    """The plan (steps and output) of the playbook document a plan made."""
    plan: dict[str, Any] = {"steps": list(playbook.document.get("steps", ()))}
    if playbook.document.get("output") is not None:
        plan["output"] = playbook.document["output"]
    return plan


def _planning(env: Environment) -> Planning:
    playbook = env.playbook
    return playbook.planning if playbook is not None and playbook.planning else Planning()


def _plan_review_due(
    state: WorkflowState, escalation: EscalationState, env: Environment
) -> Decision:
    """The plan's review deadline passed: ``planning.review.on_timeout``."""

    def reject(rejecting: WorkflowState, record: RecordReviewEvent, why: str) -> Decision:
        failed = fail_workflow(rejecting, why, env)
        return Decision(failed.state, (record, *failed.commands))

    return missed_deadline(
        state, escalation, _planning(env).review, env, what="the plan", reject=reject
    )
