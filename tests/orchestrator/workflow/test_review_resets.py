"""What a rejection that goes back (on_reject: goto) does to the other steps it resets:
their open escalations, their deadlines, and results computed before the reset."""

from __future__ import annotations

from orchestrator.workflow.machine import due_timers
from orchestrator.workflow.messages import ReviewDue
from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    TaskStatus,
    WorkflowStatus,
)
from tests.orchestrator.workflow.harness import Run, load_playbook
from tests.orchestrator.workflow.test_review import decide, open_escalation_of, report

# --- escalations of steps a rejection sends back ---------------------------------------------

# A rejected draft goes back to research; summary, also after research, is reviewed too.
BRANCHES = """\
type: branches
steps:
  - name: research
    capability: researcher
  - name: draft
    capability: writer
    depends_on: [research]
    requires_approval: true
    on_reject: {goto: research}
  - name: summary
    capability: summarizer
    depends_on: [research]
    requires_approval: true
    review: {sla: 10m, on_timeout: {action: reject}}
"""


def both_waiting() -> tuple[Run, EscalationState, EscalationState]:
    """Research done; draft and summary both wait for a reviewer."""
    run = Run(load_playbook(BRANCHES), {})
    run.start()
    report(run, "research", {"notes": "first"})
    report(run, "draft", {"text": "draft 1"})
    report(run, "summary", {"text": "summary 1"})
    return run, open_escalation_of(run, "draft"), open_escalation_of(run, "summary")


def test_a_goto_rejection_resolves_the_escalations_of_the_steps_it_sends_back() -> None:
    run, draft, summary = both_waiting()

    decide(run, draft, "reject", reason="research more")

    # summary went back to pending with research: nothing of it waits for a reviewer now.
    assert run.task("summary").status is TaskStatus.PENDING
    assert run.state.escalations[summary.id].status is EscalationStatus.RESOLVED


def test_a_missed_deadline_of_a_step_sent_back_does_not_fail_the_workflow() -> None:
    run, draft, _ = both_waiting()
    decide(run, draft, "reject", reason="research more")
    run.advance(11 * 60)

    for timer in due_timers(run.state, run.now):
        if isinstance(timer, ReviewDue):
            run.apply(timer)

    assert run.state.status is WorkflowStatus.RUNNING
    assert run.task("summary").status is TaskStatus.PENDING


def test_a_decision_on_an_earlier_runs_escalation_never_approves_the_new_proposal() -> None:
    run, draft, old_summary = both_waiting()
    decide(run, draft, "reject", reason="research more")
    report(run, "research", {"notes": "second"})
    report(run, "summary", {"text": "summary 2"})
    assert run.task("summary").status is TaskStatus.AWAITING_REVIEW

    # The reviewer approves what they saw: "summary 1" (the old escalation's content).
    late = decide(run, old_summary, "approve")

    assert old_summary.content["output"] == {"text": "summary 1"}
    assert not late.applied
    assert run.task("summary").status is TaskStatus.AWAITING_REVIEW
    assert run.task("summary").output is None


# summary is not reviewed; it runs beside the reviewed draft, both after research.
UNREVIEWED_SIBLING = """\
type: sibling
steps:
  - name: research
    capability: researcher
  - name: draft
    capability: writer
    depends_on: [research]
    requires_approval: true
    on_reject: {goto: research}
  - name: summary
    capability: summarizer
    depends_on: [research]
    input: {notes: $steps.research.output.notes}
"""


def test_after_a_goto_a_result_computed_before_the_reset_is_not_applied() -> None:
    run = Run(load_playbook(UNREVIEWED_SIBLING), {})
    run.start()
    report(run, "research", {"notes": "old notes"})
    report(run, "draft", {"text": "draft 1"})  # summary (attempt 1) is still running
    decide(run, open_escalation_of(run, "draft"), "reject", reason="research more")
    report(run, "research", {"notes": "new notes"})
    assert run.task("summary").input == {"notes": "new notes"}
    assert run.task("summary").attempt == 2

    # Now attempt 1 of summary, computed from the old notes, reports back.
    late = report(run, "summary", {"text": "summary of the old notes"}, attempt=1)

    assert not late.applied
    assert run.task("summary").status is TaskStatus.DISPATCHED
