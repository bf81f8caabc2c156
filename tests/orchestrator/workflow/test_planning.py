"""Workflows the LLM planner plans, in the state machine: waiting for a plan, starting on
it, a reviewer's approval of it (approve, edit, reject, deadlines), and a planner that
gave up. Pure: plans are checked in memory, a clock only the test moves."""

from __future__ import annotations

from datetime import timedelta
from itertools import count
from typing import Any

from orchestrator.planning.plans import check_plan
from orchestrator.playbooks.model import PLANNER, Playbook
from orchestrator.workflow.escalation import OPENED_BY, canonical_digest, escalation_id
from orchestrator.workflow.machine import due_timers
from orchestrator.workflow.messages import (
    AnnounceTaskEscalated,
    AnnounceWorkflowCompleted,
    AnnounceWorkflowFailed,
    AnnounceWorkflowStarted,
    Decision,
    DecisionMade,
    DispatchTask,
    PlanFailed,
    PlanReady,
    RecordReviewEvent,
    ReviewDue,
    StorePlan,
)
from orchestrator.workflow.planning import (
    PLAN,
    PLAN_STEP,
    plan_of,
    plan_task_id,
    refuse_plan_action,
)
from orchestrator.workflow.resolution import SLA_ACTOR
from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    ReviewDecision,
    TaskStatus,
    WorkflowStatus,
)
from tests.orchestrator.workflow.harness import (
    T0,
    WORKFLOW_ID,
    Run,
    dispatched_steps,
    load_playbook,
    statuses,
)

# Planned by the LLM planner; its steps get a 45 s timeout.
PLANNED = """\
type: research
planner: llm
input_schema:
  type: object
  required: [topic]
  properties: {topic: {type: string}}
defaults:
  timeout: 45s
planning:
  capabilities: [search, write]
"""


def approved(on_timeout: str = "{action: wait}") -> str:
    """PLANNED, with each plan waiting for a planner's approval (2-hour SLA)."""
    return (
        PLANNED
        + f"""\
  requires_approval: true
  review:
    group: planners
    priority: 1
    sla: 2h
    warn_before: 30m
    on_timeout: {on_timeout}
"""
    )


GOAL_INPUT = {"topic": "refunds"}

# search, then write from its notes.
PROPOSED: dict[str, Any] = {
    "steps": [
        {"name": "search", "capability": "search", "input": {"query": "$goal.topic"}},
        {
            "name": "write",
            "capability": "write",
            "depends_on": ["search"],
            "input": {"notes": "$steps.search.output.notes"},
        },
    ],
    "output": {"text": "$steps.write.output.text"},
}

# A reviewer's edit: write straight from the goal.
EDITED: dict[str, Any] = {
    "steps": [{"name": "draft", "capability": "write", "input": {"notes": "$goal.topic"}}]
}

CYCLIC: dict[str, Any] = {
    "steps": [
        {"name": "a", "capability": "search", "depends_on": ["b"]},
        {"name": "b", "capability": "write", "depends_on": ["a"]},
    ]
}

_ids = count(1)


def plan_for(run: Run, plan: dict[str, Any]) -> Playbook:
    """The playbook ``plan`` makes for the run's goal type (as the planner checks it)."""
    assert run.playbook is not None
    checked = check_plan(run.playbook, plan, goal_input=run.state.input, catalogue=None)
    assert checked.playbook is not None, checked.problems
    return checked.playbook


def planning_run(text: str = PLANNED) -> Run:
    """A run of a planned goal type, waiting for its plan since T0."""
    run = Run(load_playbook(text), GOAL_INPUT)
    run.start()
    assert run.state.status is WorkflowStatus.PLANNING
    return run


def awaiting_approval(on_timeout: str = "{action: wait}") -> tuple[Run, Playbook, EscalationState]:
    """A run whose proposed plan (made at T0 + 5 s, on the 2nd attempt) waits for a
    reviewer."""
    run = planning_run(approved(on_timeout))
    run.advance(5)
    plan = plan_for(run, PROPOSED)
    run.apply(PlanReady(plan, attempts=2))
    (escalation,) = run.state.escalations.values()
    return run, plan, escalation


def decide(
    run: Run,
    escalation: EscalationState,
    action: str,
    *,
    output: dict[str, Any] | None = None,
    reason: str | None = None,
    version: int | None = None,
    decision_id: str | None = None,
    reviewer: str = "ada",
) -> Decision:
    """A reviewer's decision on the plan as they saw it (the escalation's version)."""
    decision = ReviewDecision(
        id=decision_id or f"decision-{next(_ids)}",
        action=action,
        reviewer=reviewer,
        decided_at=run.now,
        output=output,
        reason=reason,
    )
    return run.apply(
        DecisionMade(
            escalation.id,
            decision,
            escalation.version if version is None else version,
            escalation.digest,
        )
    )


def running_on(run: Run, plan: Playbook) -> None:
    """Hand the machine the plan's playbook from now on, as the applier does once it
    stored the plan (the workflow's playbook_digest names it)."""
    assert run.state.playbook_digest == plan.digest
    run.playbook = plan


# --- waiting for a plan --------------------------------------------------------------------


def test_a_goal_of_a_planned_type_waits_for_its_plan() -> None:
    run = Run(load_playbook(PLANNED), GOAL_INPUT)

    decision = run.start()

    assert decision.applied
    assert decision.commands == ()
    assert run.state.status is WorkflowStatus.PLANNING
    assert run.state.tasks == {}
    assert run.state.started_at == T0
    assert run.state.playbook_digest is None  # no plan yet
    assert run.state.escalations == {}


def test_an_invalid_goal_input_of_a_planned_type_fails_the_workflow() -> None:
    run = Run(load_playbook(PLANNED), {"topic": 42})

    decision = run.start()

    reason = 'goal input is invalid: topic: 42 is not of type "string"'
    assert run.state.status is WorkflowStatus.FAILED
    assert run.state.reason == reason
    assert decision.commands == (AnnounceWorkflowFailed(reason, None, None),)


def test_a_goal_accepted_again_while_planning_is_not_applied() -> None:
    run = planning_run()
    waiting = run.state

    again = run.start()

    assert not again.applied
    assert run.state is waiting


def test_a_plan_for_a_workflow_not_yet_accepted_is_not_applied() -> None:
    run = Run(load_playbook(PLANNED), GOAL_INPUT)
    accepted = run.state

    decision = run.apply(PlanReady(plan_for(run, PROPOSED)))

    assert not decision.applied
    assert decision.note == "workflow is accepted, not planning"
    assert run.state is accepted


# --- a plan without approval ---------------------------------------------------------------


def test_a_ready_plan_starts_the_workflow_on_it() -> None:
    run = planning_run()
    run.advance(5)
    plan = plan_for(run, PROPOSED)

    decision = run.apply(PlanReady(plan, attempts=2))

    assert decision.applied
    assert run.state.status is WorkflowStatus.RUNNING
    assert run.state.playbook_digest == plan.digest
    assert run.state.started_at == T0  # when planning began
    search = run.task("search")
    assert decision.commands == (
        StorePlan(plan),
        AnnounceWorkflowStarted(("search", "write")),
        DispatchTask(search, run.now + timedelta(seconds=45)),
    )
    assert dispatched_steps(decision) == ["search"]
    assert search.input == {"query": "refunds"}
    assert statuses(run) == {"search": TaskStatus.DISPATCHED, "write": TaskStatus.PENDING}
    assert run.state.escalations == {}


def test_a_second_plan_is_not_applied() -> None:
    run = planning_run()
    plan = plan_for(run, PROPOSED)
    run.apply(PlanReady(plan))
    running_on(run, plan)
    started = run.state

    again = run.apply(PlanReady(plan_for(planning_run(), EDITED)))

    assert not again.applied
    assert again.note == "workflow is running, not planning"
    assert again.commands == ()
    assert run.state is started


def test_a_planned_workflow_runs_to_completion_on_its_plan() -> None:
    run = planning_run()
    plan = plan_for(run, PROPOSED)
    run.apply(PlanReady(plan))
    running_on(run, plan)

    searched = run.succeed("search", {"notes": "refunds take 5 days"})
    assert dispatched_steps(searched) == ["write"]
    assert run.task("write").input == {"notes": "refunds take 5 days"}
    done = run.succeed("write", {"text": "Refunds take 5 days."})

    assert run.state.status is WorkflowStatus.COMPLETED
    assert run.state.output == {"text": "Refunds take 5 days."}
    assert isinstance(done.commands[-1], AnnounceWorkflowCompleted)
    assert done.commands[-1].output == {"text": "Refunds take 5 days."}


# --- a planner that gave up ----------------------------------------------------------------


def test_a_failed_plan_fails_the_workflow_with_the_planners_reasons() -> None:
    run = planning_run()
    run.advance(20)

    decision = run.apply(PlanFailed("3 plans refused: unknown capability 'mail'"))

    reason = "planning failed: 3 plans refused: unknown capability 'mail'"
    assert decision.applied
    assert run.state.status is WorkflowStatus.FAILED
    assert run.state.reason == reason
    assert run.state.finished_at == run.now
    assert decision.commands == (AnnounceWorkflowFailed(reason, None, None),)


def test_a_failed_plan_after_the_workflow_started_is_not_applied() -> None:
    run = planning_run()
    plan = plan_for(run, PROPOSED)
    run.apply(PlanReady(plan))
    running_on(run, plan)
    started = run.state

    late = run.apply(PlanFailed("budget spent"))

    assert not late.applied
    assert late.note == "workflow is running, not planning"
    assert run.state is started


# --- a plan a reviewer approves ------------------------------------------------------------


def test_a_plan_requiring_approval_waits_for_a_reviewer() -> None:
    run = planning_run(approved())
    run.advance(5)
    plan = plan_for(run, PROPOSED)

    decision = run.apply(PlanReady(plan, attempts=2))

    assert decision.applied
    assert run.state.status is WorkflowStatus.PLANNING
    assert run.state.tasks == {}
    assert run.state.playbook_digest is None
    (escalation,) = run.state.escalations.values()
    reason = "goal type 'research' requires a reviewer to approve each plan"
    content = {
        "workflow_id": WORKFLOW_ID,
        "goal_type": "research",
        "step": PLAN_STEP,
        "capability": PLANNER,
        "attempt": 2,
        "goal_input": GOAL_INPUT,
        "task_input": {},
        "output": plan_of(plan),
        "reason": reason,
    }
    due = run.now + timedelta(hours=2)
    assert escalation == EscalationState(
        id=escalation_id(plan_task_id(WORKFLOW_ID), 1),
        task_id=plan_task_id(WORKFLOW_ID),
        step=PLAN_STEP,
        attempt=2,
        kind=PLAN,
        reason=reason,
        status=EscalationStatus.PENDING,
        priority=1,
        group="planners",
        version=1,
        digest=canonical_digest(content),
        content=content,
        opened_at=run.now,
        due_at=due,
        warn_at=due - timedelta(minutes=30),
    )
    assert escalation.content["output"] == PROPOSED
    assert decision.commands == (
        AnnounceTaskEscalated(escalation),
        RecordReviewEvent(escalation, "opened", OPENED_BY, {"reason": reason}),
    )
    assert run.state.capability_of(escalation) == PLANNER


def test_while_a_plan_waits_for_a_reviewer_another_plan_or_a_failure_is_not_applied() -> None:
    run, _, escalation = awaiting_approval()
    waiting = run.state

    second = run.apply(PlanReady(plan_for(run, EDITED)))
    failed = run.apply(PlanFailed("too late"))

    assert not second.applied
    assert not failed.applied
    assert run.state is waiting
    assert list(run.state.escalations) == [escalation.id]


def test_approving_the_plan_starts_the_workflow_on_it() -> None:
    run, plan, escalation = awaiting_approval()
    run.advance(60)

    decision = decide(run, escalation, "approve", decision_id="d-approve")

    assert decision.applied
    assert run.state.status is WorkflowStatus.RUNNING
    assert run.state.playbook_digest == plan.digest
    assert run.state.started_at == T0
    resolved = run.state.escalations[escalation.id]
    assert resolved.status is EscalationStatus.RESOLVED
    assert resolved.resolved_at == run.now
    assert resolved.decision is not None
    assert (resolved.decision.id, resolved.decision.action) == ("d-approve", "approve")
    search = run.task("search")
    assert decision.commands == (
        RecordReviewEvent(resolved, "resolved", "ada", {"action": "approve"}),
        StorePlan(plan),
        AnnounceWorkflowStarted(("search", "write")),
        DispatchTask(search, run.now + timedelta(seconds=45)),
    )
    stored = decision.commands[1]
    assert isinstance(stored, StorePlan)
    assert stored.plan.digest == plan.digest


def test_an_approved_plan_runs_to_completion() -> None:
    run, plan, escalation = awaiting_approval()
    decide(run, escalation, "approve")
    running_on(run, plan)

    run.succeed("search", {"notes": "n"})
    run.succeed("write", {"text": "done"})

    assert run.state.status is WorkflowStatus.COMPLETED
    assert run.state.output == {"text": "done"}


def test_an_edit_starts_the_workflow_on_the_edited_plan() -> None:
    run, plan, escalation = awaiting_approval()

    decision = decide(run, escalation, "edit", output=EDITED, reviewer="grace")

    edited = plan_for(run, EDITED)
    assert decision.applied
    assert run.state.status is WorkflowStatus.RUNNING
    assert run.state.playbook_digest == edited.digest != plan.digest
    assert statuses(run) == {"draft": TaskStatus.DISPATCHED}
    assert run.task("draft").input == {"notes": "refunds"}
    resolved = run.state.escalations[escalation.id]
    assert decision.commands[:3] == (
        RecordReviewEvent(resolved, "resolved", "grace", {"action": "edit"}),
        StorePlan(edited),
        AnnounceWorkflowStarted(("draft",)),
    )
    assert dispatched_steps(decision) == ["draft"]
    running_on(run, edited)
    done = run.succeed("draft", {"text": "short"})
    assert done.state.status is WorkflowStatus.COMPLETED
    assert done.state.output == {"draft": {"text": "short"}}  # the edit has no output


def test_rejecting_the_plan_fails_the_workflow_with_the_reviewers_reason() -> None:
    run, _, escalation = awaiting_approval()
    run.advance(30)

    decision = decide(run, escalation, "reject", reason="too broad", reviewer="grace")

    why = "reviewer grace rejected the plan: too broad"
    assert decision.applied
    assert run.state.status is WorkflowStatus.FAILED
    assert run.state.reason == why
    assert run.state.finished_at == run.now
    assert run.state.tasks == {}
    resolved = run.state.escalations[escalation.id]
    assert resolved.status is EscalationStatus.RESOLVED
    assert decision.commands == (
        RecordReviewEvent(resolved, "resolved", "grace", {"action": "reject"}),
        AnnounceWorkflowFailed(why, None, None),
    )


def test_an_edited_plan_that_cannot_run_fails_the_workflow_with_the_reason() -> None:
    run, _, escalation = awaiting_approval()

    decision = decide(run, escalation, "edit", output=CYCLIC)

    why = (
        "the plan ada approved cannot run: "
        "steps: steps depend on each other in a cycle: a -> b -> a"
    )
    assert decision.applied
    assert run.state.status is WorkflowStatus.FAILED
    assert run.state.reason == why
    assert run.state.playbook_digest is None
    assert not any(isinstance(c, StorePlan | DispatchTask) for c in decision.commands)
    resolved = run.state.escalations[escalation.id]
    assert resolved.status is EscalationStatus.RESOLVED
    assert decision.commands == (
        RecordReviewEvent(resolved, "resolved", "ada", {"action": "edit"}),
        AnnounceWorkflowFailed(why, None, None),
    )


def test_an_edited_plan_with_a_key_a_plan_may_not_set_fails_the_workflow() -> None:
    run, _, escalation = awaiting_approval()
    sneaky = {"steps": [{**EDITED["steps"][0], "requires_approval": False}]}

    decide(run, escalation, "edit", output=sneaky)

    assert run.state.status is WorkflowStatus.FAILED
    assert run.state.reason is not None
    assert "'requires_approval' cannot be set by a plan" in run.state.reason


def test_a_decision_on_an_older_version_of_the_plan_is_not_applied() -> None:
    run, _, escalation = awaiting_approval()
    waiting = run.state

    decision = decide(run, escalation, "approve", version=2, decision_id="d-old")

    assert not decision.applied
    assert decision.note == (
        "decision d-old: the escalation changed since you saw it (you saw version 2, it is at "
        "version 1); reload it and look again"
    )
    assert decision.commands == ()
    assert run.state is waiting


def test_retrying_a_plan_is_not_applied() -> None:
    run, _, escalation = awaiting_approval()
    waiting = run.state

    decision = decide(run, escalation, "retry", decision_id="d-retry")

    assert not decision.applied
    assert decision.note == (
        "decision d-retry: a plan is approved, edited or rejected; 'retry' is not one of those"
    )
    assert run.state is waiting
    assert run.state.status is WorkflowStatus.PLANNING


def test_a_rejection_without_a_reason_or_an_edit_without_a_plan_is_not_applied() -> None:
    run, _, escalation = awaiting_approval()
    waiting = run.state

    no_reason = decide(run, escalation, "reject", reason="  ", decision_id="d-why")
    no_plan = decide(run, escalation, "edit", decision_id="d-what")

    assert no_reason.note == "decision d-why: a rejection needs a reason"
    assert no_plan.note == "decision d-what: an edit needs the edited plan"
    assert not no_reason.applied
    assert not no_plan.applied
    assert run.state is waiting


def test_refuse_plan_action_allows_approve_edit_and_reject_only() -> None:
    assert refuse_plan_action("approve", None, None) is None
    assert refuse_plan_action("edit", EDITED, None) is None
    assert refuse_plan_action("reject", None, "no") is None
    assert refuse_plan_action("retry", None, None) is not None
    assert refuse_plan_action("skip", None, None) is not None


def test_a_decision_the_review_api_recorded_is_applied() -> None:
    run, plan, escalation = awaiting_approval()
    # The review API records the decision: decided, one version further.
    accepted = ReviewDecision(
        id="d-recorded",
        action="approve",
        reviewer="ada",
        decided_at=run.now,
        output=None,
        reason=None,
    )
    run.state = run.state.with_escalation(
        escalation.evolve(status=EscalationStatus.DECIDED, version=2, decision=accepted)
    )

    decision = run.apply(DecisionMade(escalation.id, accepted, 1, escalation.digest))

    assert decision.applied
    assert run.state.status is WorkflowStatus.RUNNING
    assert run.state.playbook_digest == plan.digest


def test_the_same_decision_again_after_the_plan_started_is_not_applied() -> None:
    run, plan, escalation = awaiting_approval()
    decide(run, escalation, "approve", decision_id="d-1")
    running_on(run, plan)
    started = run.state
    accepted = started.escalations[escalation.id].decision
    assert accepted is not None

    again = run.apply(DecisionMade(escalation.id, accepted, 1, escalation.digest))

    assert not again.applied
    assert again.note == "decision d-1: the escalation is already resolved"
    assert run.state is started
    assert run.task("search").attempt == 1  # dispatched once


# --- the review deadline -------------------------------------------------------------------


def test_the_plans_review_deadline_shows_in_the_due_timers() -> None:
    run, _, escalation = awaiting_approval()

    assert due_timers(run.state, escalation.due_at - timedelta(seconds=1)) == []
    assert due_timers(run.state, escalation.due_at) == [ReviewDue(escalation.id)]


def test_a_review_deadline_not_yet_reached_is_not_applied() -> None:
    run, _, escalation = awaiting_approval("{action: reject}")
    run.advance(3600)
    waiting = run.state

    early = run.apply(ReviewDue(escalation.id))

    assert not early.applied
    assert run.state is waiting


def test_a_missed_deadline_with_on_timeout_reject_fails_the_workflow() -> None:
    run, _, escalation = awaiting_approval("{action: reject}")
    run.advance(2 * 3600)

    decision = run.apply(ReviewDue(escalation.id))

    why = "no reviewer decided the plan within its SLA of 7200 s"
    assert decision.applied
    assert run.state.status is WorkflowStatus.FAILED
    assert run.state.reason == why
    resolved = run.state.escalations[escalation.id]
    assert resolved.status is EscalationStatus.RESOLVED
    assert resolved.decision is None  # nobody decided; the deadline never approves
    assert decision.commands == (
        RecordReviewEvent(
            resolved, "sla_timeout", SLA_ACTOR, {"action": "reject", "sla_s": 7200.0}
        ),
        AnnounceWorkflowFailed(why, None, None),
    )


def test_a_missed_deadline_with_on_timeout_wait_marks_the_plan_overdue() -> None:
    run, plan, escalation = awaiting_approval("{action: wait}")
    run.advance(3 * 3600)

    decision = run.apply(ReviewDue(escalation.id))

    overdue = run.state.escalations[escalation.id]
    assert decision.applied
    assert overdue.overdue
    assert overdue.status is EscalationStatus.PENDING
    assert run.state.status is WorkflowStatus.PLANNING
    assert decision.commands == (
        RecordReviewEvent(overdue, "sla_timeout", SLA_ACTOR, {"action": "wait", "sla_s": 7200.0}),
    )
    # Marked once; the reviewer may still decide.
    assert not run.apply(ReviewDue(escalation.id)).applied
    assert due_timers(run.state, run.now) == []
    late = decide(run, overdue, "approve")
    assert late.state.status is WorkflowStatus.RUNNING
    assert run.state.playbook_digest == plan.digest


def test_a_missed_deadline_with_on_timeout_reassign_moves_the_plan_to_the_other_group() -> None:
    run, _, escalation = awaiting_approval("{action: reassign, group: leads}")
    run.advance(2 * 3600)

    decision = run.apply(ReviewDue(escalation.id))

    moved = run.state.escalations[escalation.id]
    assert decision.applied
    assert (moved.group, moved.version, moved.status) == ("leads", 2, EscalationStatus.PENDING)
    assert moved.due_at == run.now + timedelta(hours=2)
    assert run.state.status is WorkflowStatus.PLANNING
    # A decision on what the first group saw is now stale.
    assert not decide(run, escalation, "approve").applied
    assert decide(run, moved, "approve").applied
