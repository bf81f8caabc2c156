"""The workflow state machine: planning, fan-out/fan-in, conditions, completion, idempotency."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.playbooks.model import Playbook, Step
from orchestrator.workflow.machine import task_id
from orchestrator.workflow.messages import (
    AnnounceWorkflowCompleted,
    AnnounceWorkflowFailed,
    AnnounceWorkflowStarted,
    Decision,
    DispatchTask,
    GoalAccepted,
    LeaseExpired,
    RetryDue,
    TaskAttemptFailed,
    TaskSucceeded,
)
from orchestrator.workflow.state import (
    Attempt,
    TaskError,
    TaskStatus,
    WorkflowStatus,
)
from tests.orchestrator.workflow.harness import (
    CONDITIONAL,
    SINGLE,
    T0,
    TICKET,
    WORKFLOW_ID,
    Run,
    dispatched_steps,
    load_playbook,
    statuses,
    ticket_run,
)

# --- planning -----------------------------------------------------------------------------


def test_planning_creates_every_task_and_dispatches_only_the_roots() -> None:
    run = ticket_run()

    decision = run.start()

    assert decision.applied
    assert run.state.status is WorkflowStatus.RUNNING
    assert run.state.started_at == T0
    assert statuses(run) == {
        "triage": TaskStatus.DISPATCHED,
        "knowledge": TaskStatus.DISPATCHED,
        "reply": TaskStatus.PENDING,
    }
    assert run.task("reply").attempt == 0
    assert run.task("reply").max_attempts == 3


def test_planning_announces_the_workflow_then_dispatches_the_roots_together() -> None:
    decision = ticket_run().start()

    assert decision.commands[0] == AnnounceWorkflowStarted(("triage", "knowledge", "reply"))
    assert dispatched_steps(decision) == ["triage", "knowledge"]
    assert len(decision.commands) == 3


def test_a_dispatch_carries_resolved_input_and_a_deadline_of_now_plus_timeout() -> None:
    run = ticket_run()

    decision = run.start()

    dispatch = next(c for c in decision.commands if isinstance(c, DispatchTask))
    assert dispatch.deadline == T0 + timedelta(seconds=30)
    # `customer` is missing from the goal, so it is left out for the agent's default.
    assert dispatch.task.input == {"subject": "Refund please"}
    assert dispatch.task == run.task("triage")
    assert run.task("triage").lease_expires_at == dispatch.deadline
    assert run.task("triage").attempt == 1
    assert run.task("triage").attempts == (Attempt(1, T0),)


def test_task_ids_are_stable_and_distinct() -> None:
    run = ticket_run()
    run.start()

    assert run.task("triage").id == task_id(WORKFLOW_ID, "triage")
    assert task_id(WORKFLOW_ID, "triage") == task_id(WORKFLOW_ID, "triage")
    assert len({task_id(WORKFLOW_ID, s) for s in ("triage", "knowledge", "reply")}) == 3
    assert task_id("wf-2", "triage") != task_id(WORKFLOW_ID, "triage")


def test_a_duplicate_goal_is_not_planned_again() -> None:
    run = ticket_run()
    run.start()
    planned = run.state

    decision = run.apply(GoalAccepted())

    assert not decision.applied
    assert decision.commands == ()
    assert decision.state is planned
    assert decision.note == "goal already planned"


def test_a_goal_without_a_playbook_fails_naming_the_type_and_the_known_ones() -> None:
    run = Run(None)

    decision = run.start()

    assert run.state.status is WorkflowStatus.FAILED
    assert run.state.reason == (
        "no playbook for goal type 'nobody.plans.this' (known: a.type, b.type)"
    )
    assert run.state.finished_at == T0
    assert decision.commands == (AnnounceWorkflowFailed(run.state.reason, None, None),)


def test_a_goal_with_invalid_input_fails_naming_the_problem() -> None:
    run = Run(load_playbook(TICKET), {"subject": 42})

    decision = run.start()

    assert run.state.status is WorkflowStatus.FAILED
    assert run.state.reason is not None
    assert run.state.reason.startswith("goal input is invalid: subject: 42 is not of type")
    assert run.state.tasks == {}
    assert decision.commands == (AnnounceWorkflowFailed(run.state.reason, None, None),)


def test_a_failed_plan_is_not_retried_by_a_duplicate_goal() -> None:
    run = Run(None)
    run.start()

    assert not run.apply(GoalAccepted()).applied


# --- success, fan-in, conditions, completion ----------------------------------------------


def test_fan_in_waits_for_every_dependency() -> None:
    run = ticket_run()
    run.start()
    run.advance(1)

    first = run.succeed("triage", {"category": "billing"})

    assert first.applied
    assert first.commands == ()
    assert run.task("triage").status is TaskStatus.COMPLETED
    assert run.task("reply").status is TaskStatus.PENDING

    run.advance(1)
    second = run.succeed("knowledge", {"articles": [{"id": "a1"}]})

    assert dispatched_steps(second) == ["reply"]
    assert run.task("reply").input == {
        "category": "billing",
        "articles": [{"id": "a1"}],
        "workflow": WORKFLOW_ID,
    }
    assert run.task("reply").lease_expires_at == T0 + timedelta(seconds=32)


def test_a_success_records_the_agents_result() -> None:
    run = ticket_run()
    run.start()
    run.advance(3)

    run.succeed("triage", {"category": "billing"})

    task = run.task("triage")
    assert task.output == {"category": "billing"}
    assert (task.confidence, task.reasoning) == (0.75, ("because",))
    assert task.usage == {"input_tokens": 3}
    assert task.agent == {"capability": "triage", "version": "1", "instance": "i"}
    assert task.finished_at == T0 + timedelta(seconds=3)
    assert task.lease_expires_at is None
    assert task.attempts == (Attempt(1, T0, T0 + timedelta(seconds=3), "completed", None),)


def test_the_workflow_completes_with_its_output_mapping() -> None:
    run = ticket_run()
    run.start()
    run.succeed("triage", {"category": "billing"})
    run.succeed("knowledge", {"articles": []})
    run.advance(2.5)

    decision = run.succeed("reply", {"text": "Refunded."})

    assert run.state.status is WorkflowStatus.COMPLETED
    assert run.state.output == {"category": "billing", "reply": "Refunded."}
    assert run.state.finished_at == T0 + timedelta(seconds=2.5)
    assert decision.commands == (
        AnnounceWorkflowCompleted({"category": "billing", "reply": "Refunded."}, 2500.0),
    )


def test_without_an_output_mapping_the_output_is_every_steps_output() -> None:
    run = Run(load_playbook(SINGLE), {"text": "hi"})
    run.start()

    decision = run.succeed("only", {"text": "hi"})

    assert run.state.output == {"only": {"text": "hi"}}
    assert decision.commands == (AnnounceWorkflowCompleted({"only": {"text": "hi"}}, 0.0),)


def test_an_output_mapping_that_is_one_reference_is_wrapped() -> None:
    text = SINGLE + "output: $steps.only.output.text\n"
    run = Run(load_playbook(text), {"text": "hi"})
    run.start()

    run.succeed("only", {"text": "hi"})

    assert run.state.output == {"result": "hi"}


def test_a_false_condition_skips_the_step_and_its_dependents_still_run() -> None:
    run = Run(load_playbook(CONDITIONAL))
    run.start()
    run.advance(1)

    decision = run.succeed("triage", {"urgency": "low"})

    assert run.task("escalate").status is TaskStatus.SKIPPED
    assert run.task("escalate").finished_at == T0 + timedelta(seconds=1)
    assert run.task("escalate").attempts == ()
    assert dispatched_steps(decision) == ["close"]
    # The skipped step has no output, so the key reading it is left out.
    assert run.task("close").input == {"urgency": "low"}


def test_a_true_condition_dispatches_the_step() -> None:
    run = Run(load_playbook(CONDITIONAL))
    run.start()

    decision = run.succeed("triage", {"urgency": "urgent"})

    assert dispatched_steps(decision) == ["escalate"]
    run.succeed("escalate", {"paged": True})
    assert run.task("close").input == {"paged": True, "urgency": "urgent"}


def test_a_workflow_whose_last_steps_are_skipped_completes() -> None:
    text = """\
    type: t
    steps:
      - name: a
        capability: x
      - name: b
        capability: x
        depends_on: [a]
        when: {ref: $steps.a.output.go, eq: true}
    """
    run = Run(load_playbook(text))
    run.start()

    decision = run.succeed("a", {"go": False})

    assert run.state.status is WorkflowStatus.COMPLETED
    assert run.state.output == {"a": {"go": False}, "b": None}
    assert isinstance(decision.commands[-1], AnnounceWorkflowCompleted)


def test_a_root_condition_reading_the_goal_is_decided_at_planning() -> None:
    text = """\
    type: t
    steps:
      - name: a
        capability: x
        when: {ref: $goal.enabled, exists: true}
      - name: b
        capability: x
    """
    run = Run(load_playbook(text), {})

    decision = run.start()

    assert dispatched_steps(decision) == ["b"]
    assert run.task("a").status is TaskStatus.SKIPPED


# --- results applied at most once ---------------------------------------------------------


def test_a_second_success_is_not_applied_and_changes_nothing() -> None:
    run = ticket_run()
    run.start()
    run.succeed("triage", {"category": "billing"})
    before = run.state

    decision = run.succeed("triage", {"category": "shipping"}, attempt=1)

    assert not decision.applied
    assert decision.commands == ()
    assert decision.state is before
    assert run.task("triage").output == {"category": "billing"}
    assert "ignored: task is completed" in (decision.note or "")


def test_a_success_for_a_future_attempt_is_ignored() -> None:
    run = ticket_run()
    run.start()

    decision = run.succeed("triage", attempt=2)

    assert not decision.applied
    assert run.task("triage").status is TaskStatus.DISPATCHED


def test_a_success_for_attempt_zero_is_ignored() -> None:
    run = ticket_run()
    run.start()

    assert not run.succeed("triage", attempt=0).applied


def test_a_result_for_a_pending_task_is_ignored() -> None:
    run = ticket_run()
    run.start()

    decision = run.succeed("reply", attempt=1)

    assert not decision.applied
    assert run.task("reply").status is TaskStatus.PENDING


def test_a_result_for_a_task_of_another_workflow_is_ignored() -> None:
    run = ticket_run()
    run.start()

    decision = run.apply(TaskSucceeded(task_id("wf-2", "triage"), 1, {}, 1.0))

    assert not decision.applied
    assert "is not in this workflow" in (decision.note or "")


def test_a_failure_for_another_attempt_is_ignored() -> None:
    run = ticket_run()
    run.start()
    run.fail("triage")
    run.advance(10)
    run.apply(RetryDue(run.task("triage").id))
    before = run.state

    stale = run.fail("triage", attempt=1)
    future = run.fail("triage", attempt=3)

    assert not stale.applied
    assert not future.applied
    assert run.state is before


def test_a_failure_after_success_is_ignored() -> None:
    run = ticket_run()
    run.start()
    run.succeed("triage")

    assert not run.fail("triage", attempt=1).applied
    assert run.task("triage").status is TaskStatus.COMPLETED


def test_results_after_the_workflow_completed_are_not_applied() -> None:
    run = Run(load_playbook(SINGLE))
    run.start()
    run.succeed("only")
    finished = run.state

    for late in (
        TaskSucceeded(run.task("only").id, 1, {"late": True}, 1.0),
        TaskAttemptFailed(run.task("only").id, 1, TaskError("X", "late")),
        LeaseExpired(run.task("only").id, 1),
        RetryDue(run.task("only").id),
    ):
        decision = run.apply(late)
        assert not decision.applied
        assert decision.note == "workflow already completed"
        assert run.state is finished


def test_inputs_after_the_workflow_failed_are_not_applied() -> None:
    run = ticket_run()
    run.start()
    run.fail("triage", retryable=False)

    decision = run.succeed("knowledge", attempt=1)

    assert not decision.applied
    assert decision.note == "workflow already failed"
    assert run.task("knowledge").status is TaskStatus.CANCELLED


def test_without_its_playbook_a_running_workflow_changes_nothing() -> None:
    run = ticket_run()
    run.start()
    run.playbook = None

    decision = run.succeed("triage")

    assert not decision.applied
    assert decision.note == "no playbook for 'ticket'"


# --- a property over random graphs --------------------------------------------------------


@st.composite
def _graphs(draw: st.DrawFn) -> Playbook:
    count = draw(st.integers(min_value=1, max_value=7))
    steps = []
    for index in range(count):
        depends_on = draw(st.sets(st.sampled_from(range(index)), max_size=3)) if index else set()
        steps.append(
            Step(
                name=f"s{index}",
                capability="work",
                depends_on=tuple(f"s{d}" for d in sorted(depends_on)),
                input={"upstream": [f"$steps.s{d}.output.n" for d in sorted(depends_on)]},
            )
        )
    return Playbook(type="random.graph", steps=tuple(steps))


@settings(max_examples=150, deadline=None)
@given(playbook=_graphs(), data=st.data())
def test_any_order_of_successes_completes_every_task_exactly_once(
    playbook: Playbook, data: st.DataObject
) -> None:
    run = Run(playbook)
    dispatches: Counter[str] = Counter()
    applied: Counter[str] = Counter()
    delivered: list[TaskSucceeded] = []

    def record(decision: Decision) -> None:
        for command in decision.commands:
            if isinstance(command, DispatchTask):
                dispatches[command.task.step] += 1

    record(run.start())
    while not run.state.status.finished:
        open_steps = sorted(
            name for name, t in run.state.tasks.items() if t.status is TaskStatus.DISPATCHED
        )
        assert open_steps, "a running workflow must have a task in flight"
        step = data.draw(st.sampled_from(open_steps))
        if delivered and data.draw(st.booleans()):
            # A redelivered result from earlier: must change nothing.
            duplicate = data.draw(st.sampled_from(delivered))
            before = run.state
            assert not run.apply(duplicate).applied
            assert run.state is before
        run.advance(data.draw(st.floats(min_value=0, max_value=5)))
        index = int(step[1:])
        result = TaskSucceeded(run.task(step).id, 1, {"n": index}, 1.0)
        decision = run.apply(result)
        assert decision.applied
        applied[step] += 1
        delivered.append(result)
        record(decision)

    names = [s.name for s in playbook.steps]
    assert run.state.status is WorkflowStatus.COMPLETED
    assert all(t.status is TaskStatus.COMPLETED for t in run.state.tasks.values())
    assert dispatches == Counter(names)
    assert applied == Counter(names)
    for step in playbook.steps:
        expected = [int(d[1:]) for d in step.depends_on]
        assert run.task(step.name).input == {"upstream": expected}
