"""Operating a workflow by hand in the state machine: retrying a failed step, resuming a
failed workflow from a step (with its mapped or an edited input), late results of earlier
attempts ignored, and every refusal. Pure: no fixtures, a clock only the test moves."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.workflow.messages import (
    AnnounceWorkflowCompleted,
    DispatchTask,
    ResumeRequested,
    RetryDue,
    RetryRequested,
)
from orchestrator.workflow.operations import (
    downstream_of,
    refuse_resume,
    refuse_retry,
)
from orchestrator.workflow.state import TaskStatus, WorkflowStatus
from tests.orchestrator.workflow.harness import (
    Run,
    dispatched_steps,
    load_playbook,
    statuses,
    ticket_run,
)


def retry(
    step: str, task_input: Any = None, problems: tuple[tuple[str, str], ...] = ()
) -> RetryRequested:
    return RetryRequested(step, "olga", "fixed the agent", task_input, problems)


def resume(
    step: str, task_input: Any = None, problems: tuple[tuple[str, str], ...] = ()
) -> ResumeRequested:
    return ResumeRequested(step, "olga", "fixed the data", task_input, problems)


def failed_on_triage() -> Run:
    """The ticket workflow failed on `triage` (bad input) while `knowledge` was running."""
    run = ticket_run()
    run.start()
    run.advance(5)
    run.fail("triage", retryable=False, message="bad input")
    assert run.state.status is WorkflowStatus.FAILED
    return run


def failed_on_reply() -> Run:
    """The ticket workflow failed on `reply` after `triage` and `knowledge` completed."""
    run = ticket_run()
    run.start()
    run.succeed("triage", {"category": "billing"})
    run.succeed("knowledge", {"articles": ["a1"]})
    run.advance(5)
    run.fail("reply", retryable=False, message="no template")
    assert run.state.status is WorkflowStatus.FAILED
    return run


# --- retry a failed step -----------------------------------------------------------------


def test_retrying_the_failed_step_runs_the_workflow_again_with_a_whole_budget() -> None:
    run = failed_on_triage()
    before = run.task("triage")
    run.advance(60)

    decision = run.apply(retry("triage"))

    state = decision.state
    assert decision.applied
    assert state.status is WorkflowStatus.RUNNING
    assert (state.reason, state.failed_step, state.error, state.dead_letter) == (
        None,
        None,
        None,
        None,
    )
    assert state.finished_at is None
    triage = state.tasks["triage"]
    assert triage.status is TaskStatus.DISPATCHED
    assert triage.attempt == 2
    assert triage.max_attempts == 1 + 3  # its attempt so far, then retries: 2 -> 3 more
    assert triage.first_valid_attempt == 2
    assert triage.input == before.input  # its last input
    assert triage.error is None
    # The step the failure cancelled runs again too.
    assert dispatched_steps(decision) == ["triage", "knowledge"]
    assert state.tasks["knowledge"].attempt == 2
    assert statuses(run)["reply"] is TaskStatus.PENDING


def test_the_retried_workflow_completes_and_a_late_result_of_the_failed_attempt_is_ignored() -> (
    None
):
    run = failed_on_triage()
    run.apply(retry("triage"))

    late = run.succeed("triage", {"category": "stale"}, attempt=1)
    late_knowledge = run.succeed("knowledge", {"articles": ["stale"]}, attempt=1)

    assert not late.applied
    assert not late_knowledge.applied
    run.succeed("triage", {"category": "billing"})
    run.succeed("knowledge", {"articles": ["a1"]})
    done = run.succeed("reply", {"text": "Refunded."})
    assert run.state.status is WorkflowStatus.COMPLETED
    assert run.state.output == {"category": "billing", "reply": "Refunded."}
    assert any(isinstance(c, AnnounceWorkflowCompleted) for c in done.commands)


def test_an_edited_input_is_used_exactly_and_kept_for_the_steps_own_retries() -> None:
    run = failed_on_triage()
    edited = {"subject": "Refund, corrected", "extra": [1, 2]}

    decision = run.apply(retry("triage", edited))

    dispatches = [c for c in decision.commands if isinstance(c, DispatchTask)]
    assert (dispatches[0].task.step, dispatches[0].task.input) == ("triage", edited)
    run.fail("triage")  # retryable: waits for its backoff
    run.advance(10)
    again = run.apply(RetryDue(run.task("triage").id))
    assert [c.task.input for c in again.commands if isinstance(c, DispatchTask)] == [edited]


def test_retrying_in_a_running_workflow_changes_nothing_else() -> None:
    run = ticket_run()
    run.start()
    run.succeed("knowledge", {"articles": []})
    # A failed step in a running workflow (as a future `on_failure` could leave it).
    failed = run.task("triage").evolve(status=TaskStatus.FAILED, finished_at=run.now)
    run.state = run.state.with_task(failed)

    decision = run.apply(retry("triage"))

    assert decision.applied
    assert dispatched_steps(decision) == ["triage"]
    assert run.state.status is WorkflowStatus.RUNNING
    assert run.task("knowledge").status is TaskStatus.COMPLETED


@pytest.mark.parametrize(
    ("make", "step", "kind", "message"),
    [
        (
            ticket_run,
            "triage",
            "conflict",
            "workflow wf-1 is accepted: its steps have not started; only a step of a "
            "running or failed workflow can be retried",
        ),
        (
            failed_on_triage,
            "nobody",
            "unknown_step",
            "workflow wf-1 has no step 'nobody'; its steps are: triage, knowledge, reply",
        ),
        (
            failed_on_triage,
            "knowledge",
            "conflict",
            "step 'knowledge' is cancelled; only a failed step can be retried; to run it "
            "again, resume the workflow from it",
        ),
    ],
)
def test_what_cannot_be_retried_is_refused_saying_why(
    make: Any, step: str, kind: str, message: str
) -> None:
    run = make()
    before = run.state

    refused = refuse_retry(run.state, retry(step), run.playbook)
    decision = run.apply(retry(step))

    assert refused is not None
    assert (refused.kind, refused.message) == (kind, message)
    assert not decision.applied
    assert decision.note == message
    assert run.state == before


def test_a_step_of_a_running_workflow_that_has_not_failed_cannot_be_retried() -> None:
    run = ticket_run()
    run.start()

    refused = refuse_retry(run.state, retry("triage"), run.playbook)

    assert refused is not None
    assert refused.message == "step 'triage' is dispatched; only a failed step can be retried"


def test_a_finished_workflow_cannot_be_retried_naming_its_status() -> None:
    run = ticket_run()
    run.start()
    run.succeed("triage", {"category": "billing"})
    run.succeed("knowledge", {"articles": []})
    run.succeed("reply", {"text": "done"})

    refused = refuse_retry(run.state, retry("reply"), run.playbook)

    assert refused is not None
    assert refused.kind == "conflict"
    assert refused.message.startswith("workflow wf-1 is already completed;")


def test_an_edited_input_that_is_not_an_object_or_breaks_the_schema_is_invalid() -> None:
    run = failed_on_triage()

    not_object = refuse_retry(run.state, retry("triage", ["a"]), run.playbook)
    broken = refuse_retry(
        run.state,
        retry("triage", {"subject": 5}, (("subject", "5 is not of type 'string'"),)),
        run.playbook,
    )

    assert not_object is not None
    assert (not_object.kind, not_object.message) == (
        "invalid",
        "the edited input must be a JSON object ({...})",
    )
    assert broken is not None
    assert broken.kind == "invalid"
    assert broken.message == (
        "the edited input breaks the input schema of step 'triage': "
        "subject: 5 is not of type 'string'"
    )
    assert broken.detail == {
        "errors": [{"field": "subject", "message": "5 is not of type 'string'"}]
    }
    assert not run.apply(retry("triage", {"subject": 5}, (("subject", "wrong"),))).applied


def test_without_the_playbook_that_planned_it_nothing_runs_again() -> None:
    run = failed_on_triage()

    refused = refuse_retry(run.state, retry("triage"), None)

    assert refused is not None
    assert refused.kind == "conflict"
    assert "the playbook version that planned workflow wf-1 is gone" in refused.message


# --- resume a failed workflow from a step ----------------------------------------------------


def test_resuming_from_the_failed_step_runs_it_on_its_mapped_input() -> None:
    run = failed_on_reply()
    run.advance(30)

    decision = run.apply(resume("reply"))

    assert decision.applied
    assert run.state.status is WorkflowStatus.RUNNING
    assert dispatched_steps(decision) == ["reply"]
    reply = run.task("reply")
    assert reply.input == {"category": "billing", "articles": ["a1"], "workflow": "wf-1"}
    assert (reply.attempt, reply.first_valid_attempt, reply.max_attempts) == (2, 2, 4)
    # A late result of the failed attempt is ignored; the new one completes it.
    assert not run.succeed("reply", {"text": "old"}, attempt=1).applied
    done = run.succeed("reply", {"text": "Refunded."})
    assert done.state.status is WorkflowStatus.COMPLETED


def test_resuming_from_an_earlier_step_with_an_edited_input_runs_everything_after_it() -> None:
    run = failed_on_reply()
    edited = {"subject": "Refund, really", "customer": "c-9"}

    decision = run.apply(resume("triage", edited))

    assert dispatched_steps(decision) == ["triage"]
    assert run.task("triage").input == edited
    assert run.task("triage").output is None
    assert statuses(run) == {
        "triage": TaskStatus.DISPATCHED,
        "knowledge": TaskStatus.COMPLETED,  # not downstream of triage: kept
        "reply": TaskStatus.PENDING,
    }
    after = run.succeed("triage", {"category": "shipping"})
    assert dispatched_steps(after) == ["reply"]
    assert run.task("reply").input == {
        "category": "shipping",
        "articles": ["a1"],
        "workflow": "wf-1",
    }
    run.succeed("reply", {"text": "Shipped."})
    assert run.state.status is WorkflowStatus.COMPLETED
    assert run.state.output == {"category": "shipping", "reply": "Shipped."}


def test_resuming_reopens_the_steps_the_failure_cancelled() -> None:
    run = failed_on_triage()

    decision = run.apply(resume("triage"))

    assert dispatched_steps(decision) == ["triage", "knowledge"]
    assert run.task("knowledge").first_valid_attempt == 2
    assert not run.succeed("knowledge", {"articles": ["late"]}, attempt=1).applied


def test_an_edited_input_is_sent_even_when_the_steps_condition_would_skip_it() -> None:
    conditional = """\
    type: conditional
    steps:
      - name: first
        capability: echo
      - name: maybe
        capability: echo
        depends_on: [first]
        when: {ref: $goal.go, eq: true}
        input: {text: $steps.first.output.text}
    """
    run = Run(load_playbook(conditional), {"go": True})
    run.start()
    run.succeed("first", {"text": "a"})
    run.fail("maybe", retryable=False)
    run.state = run.state.evolve(input={"go": False})  # as if the goal had said so

    mapped = Run(run.playbook)
    mapped.state = run.state
    skipped = mapped.apply(resume("maybe"))
    edited = run.apply(resume("maybe", {"text": "by hand"}))

    assert mapped.task("maybe").status is TaskStatus.SKIPPED
    assert skipped.state.status is WorkflowStatus.COMPLETED
    assert dispatched_steps(edited) == ["maybe"]
    assert run.task("maybe").input == {"text": "by hand"}


def test_a_running_workflow_cannot_be_resumed() -> None:
    run = ticket_run()
    run.start()

    refused = refuse_resume(run.state, resume("triage"), run.playbook)

    assert refused is not None
    assert refused.kind == "conflict"
    assert refused.message == "workflow wf-1 is running; only a failed workflow can be resumed"
    assert not run.apply(resume("triage")).applied


def test_resuming_from_a_step_after_the_failed_one_is_refused() -> None:
    run = failed_on_triage()

    refused = refuse_resume(run.state, resume("reply"), run.playbook)

    assert refused is not None
    assert refused.kind == "invalid"
    assert refused.message == (
        "step 'triage' failed and resuming from 'reply' does not run it again; resume "
        "from 'triage' or a step it depends on"
    )


def test_an_unknown_step_or_a_workflow_that_never_ran_a_step_is_refused() -> None:
    run = failed_on_triage()
    unplanned = Run(None)
    unplanned.start()  # fails: no playbook for its type

    unknown = refuse_resume(run.state, resume("nobody"), run.playbook)
    never = refuse_resume(unplanned.state, resume("any"), None)

    assert unknown is not None
    assert unknown.kind == "unknown_step"
    assert never is not None
    assert never.kind == "unknown_step"
    assert never.message.startswith("workflow wf-1 has no steps: it failed before it was planned")


def test_an_edited_input_for_a_step_still_waiting_for_another_is_refused() -> None:
    run = failed_on_reply()
    # As if `knowledge` had been cancelled rather than completed.
    knowledge = run.task("knowledge").evolve(status=TaskStatus.CANCELLED)
    run.state = run.state.with_task(knowledge)

    refused = refuse_resume(run.state, resume("reply", {"text": "x"}), run.playbook)
    mapped = refuse_resume(run.state, resume("reply"), run.playbook)

    assert refused is not None
    assert refused.message == (
        "an edited input is for a step that runs at once, but step 'reply' waits for "
        "'knowledge'; resume without an edited input, or from a step it waits for"
    )
    assert mapped is None


def test_an_edited_input_breaking_the_schema_is_refused_on_resume_too() -> None:
    run = failed_on_reply()

    refused = refuse_resume(
        run.state, resume("triage", {"subject": 1}, (("subject", "not a string"),)), run.playbook
    )

    assert refused is not None
    assert refused.kind == "invalid"
    assert refused.detail == {"errors": [{"field": "subject", "message": "not a string"}]}


def test_downstream_of_a_step_is_itself_and_everything_that_waits_on_it() -> None:
    run = ticket_run()
    assert run.playbook is not None

    assert downstream_of(run.playbook, "triage") == {"triage", "reply"}
    assert downstream_of(run.playbook, "reply") == {"reply"}
