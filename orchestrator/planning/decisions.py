"""Whether a reviewer's decision on a plan may be made (the console's and API's check,
with the escalation's workflow locked): on the version and digest the reviewer saw, not
held by someone else, approve / edit / reject, and an edited plan that passes every
check a planned one does, against the capability catalogue as it is now."""

from __future__ import annotations

from sqlalchemy import Connection

from orchestrator.planning import catalogue
from orchestrator.planning.plans import check_plan
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.workflow.planning import refuse_plan_action
from orchestrator.workflow.review import (
    DecisionRequest,
    Refusal,
    Reviewer,
    refuse_held,
    refuse_stale,
)
from orchestrator.workflow.state import EscalationState, WorkflowState


def refuse_plan_decision(
    conn: Connection,
    playbooks: PlaybookRegistry,
    state: WorkflowState,
    escalation: EscalationState,
    request: DecisionRequest,
    reviewer: Reviewer,
) -> Refusal | None:
    """None when the decision may be made, else why not (a 409 or a 422)."""
    refusal = refuse_stale(escalation, request.version, request.digest) or refuse_held(
        escalation, reviewer
    )
    if refusal is not None:
        return refusal
    problem = refuse_plan_action(request.action, request.output, request.reason)
    if problem is not None:
        return Refusal(problem)
    if request.action != "edit":
        return None
    goal = playbooks.get(state.type)
    if goal is None or goal.planning is None:
        return Refusal(
            f"goal type {state.type!r} is no longer planned by the LLM planner, so the "
            "edited plan cannot be checked; approve or reject the plan"
        )
    checked = check_plan(
        goal,
        request.output,
        goal_input=state.input,
        catalogue=catalogue.load(conn, playbooks),
    )
    if not checked.problems:
        return None
    return Refusal(
        "the edited plan is refused: " + "; ".join(checked.problems),
        detail={"errors": [{"field": "plan", "message": p} for p in checked.problems]},
    )
