"""Review deadlines, decided-but-unapplied decisions, escalations of workflows that end,
the content digest, and properties over any sequence of decisions and timeouts."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.workflow.escalation import canonical_digest
from orchestrator.workflow.machine import due_timers
from orchestrator.workflow.messages import (
    AnnounceWorkflowFailed,
    DecisionMade,
    RecordReviewEvent,
    ReviewDue,
)
from orchestrator.workflow.resolution import SLA_ACTOR
from orchestrator.workflow.review import refuse_retry
from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    ReviewDecision,
    TaskError,
    TaskStatus,
    WorkflowStatus,
)
from tests.orchestrator.workflow.harness import Run, dispatched_steps, load_playbook
from tests.orchestrator.workflow.test_review import (
    decide,
    escalated_draft,
    open_escalation_of,
    report,
)


def timing(on_timeout: str, on_reject: str = "fail") -> str:
    """A playbook whose approved draft has a 30-minute SLA, then publish."""
    return f"""\
type: timing
steps:
  - name: draft
    capability: writer
    requires_approval: true
    review:
      group: editors
      sla: 30m
      warn_before: 5m
      on_timeout: {on_timeout}
    on_reject: {on_reject}
  - name: publish
    capability: publisher
    depends_on: [draft]
"""


REASSIGN = "{action: reassign, group: seniors}"
SLA = timedelta(minutes=30)


def waiting_run(on_timeout: str, on_reject: str = "fail") -> tuple[Run, EscalationState]:
    """A timing run whose draft waits for a reviewer since T0."""
    run = Run(load_playbook(timing(on_timeout, on_reject)), {"subject": "hi"})
    run.start()
    report(run, "draft", {"text": "a draft"})
    return run, open_escalation_of(run, "draft")


# --- review deadlines ----------------------------------------------------------------------


@pytest.mark.parametrize("on_timeout", [REASSIGN, "{action: reject}", "{action: wait}"])
def test_an_escalation_is_not_due_before_its_deadline(on_timeout: str) -> None:
    run, escalation = waiting_run(on_timeout)
    run.advance(SLA.total_seconds() - 1)
    waiting = run.state

    assert due_timers(run.state, run.now) == []
    early = run.apply(ReviewDue(escalation.id))

    assert not early.applied
    assert early.note == f"escalation {escalation.id} is not due"
    assert run.state is waiting


def test_a_missed_deadline_reassigns_to_the_timeout_group_as_a_new_version() -> None:
    run, escalation = waiting_run(REASSIGN)
    claimed = escalation.evolve(assignee="ada", claimed_at=run.now)
    run.state = run.state.with_escalation(claimed)
    run.advance(SLA.total_seconds())

    assert due_timers(run.state, run.now) == [ReviewDue(escalation.id)]
    decision = run.apply(ReviewDue(escalation.id))

    moved = run.state.escalations[escalation.id]
    assert decision.applied
    assert (moved.group, moved.version, moved.status) == ("seniors", 2, EscalationStatus.PENDING)
    assert (moved.assignee, moved.claimed_at) == (None, None)
    assert moved.due_at == run.now + SLA
    assert moved.warn_at == moved.due_at - timedelta(minutes=5)
    assert moved.digest == escalation.digest  # the content did not change
    assert decision.commands == (
        RecordReviewEvent(
            moved,
            "sla_timeout",
            SLA_ACTOR,
            {"action": "reassign", "sla_s": 1800.0, "group": "seniors"},
        ),
    )
    assert run.task("draft").status is TaskStatus.AWAITING_REVIEW
    assert due_timers(run.state, run.now) == []  # the new deadline is ahead


def test_after_a_reassignment_a_decision_on_the_old_version_is_stale() -> None:
    run, escalation = waiting_run(REASSIGN)
    run.advance(SLA.total_seconds())
    run.apply(ReviewDue(escalation.id))

    stale = decide(run, escalation, "approve")
    current = decide(run, run.state.escalations[escalation.id], "approve")

    assert not stale.applied
    assert current.applied
    assert run.task("draft").status is TaskStatus.COMPLETED


def test_a_missed_deadline_with_reject_runs_on_reject_naming_the_sla() -> None:
    run, escalation = waiting_run("{action: reject}")
    run.advance(SLA.total_seconds() + 5)

    decision = run.apply(ReviewDue(escalation.id))

    why = "no reviewer decided step 'draft' within its SLA of 1800 s"
    error = TaskError("Rejected", why, retryable=False)
    resolved = run.state.escalations[escalation.id]
    assert run.state.status is WorkflowStatus.FAILED
    assert (run.state.reason, run.state.failed_step) == (why, "draft")
    assert (resolved.status, resolved.decision, resolved.resolved_at) == (
        EscalationStatus.RESOLVED,
        None,
        run.now,
    )
    assert decision.commands == (
        RecordReviewEvent(
            resolved, "sla_timeout", SLA_ACTOR, {"action": "reject", "sla_s": 1800.0}
        ),
        AnnounceWorkflowFailed(why, "draft", error),
    )


def test_a_missed_deadline_with_reject_and_skip_skips_the_step() -> None:
    run, escalation = waiting_run("{action: reject}", on_reject="skip")
    run.advance(SLA.total_seconds())

    decision = run.apply(ReviewDue(escalation.id))

    assert run.task("draft").status is TaskStatus.SKIPPED
    assert dispatched_steps(decision) == ["publish"]
    assert run.state.status is WorkflowStatus.RUNNING


def test_a_missed_deadline_with_wait_marks_it_overdue_and_never_approves() -> None:
    run, escalation = waiting_run("{action: wait}")
    run.advance(SLA.total_seconds())

    decision = run.apply(ReviewDue(escalation.id))

    overdue = run.state.escalations[escalation.id]
    assert decision.applied
    assert overdue == escalation.evolve(overdue=True)
    assert decision.commands == (
        RecordReviewEvent(overdue, "sla_timeout", SLA_ACTOR, {"action": "wait", "sla_s": 1800.0}),
    )
    assert run.task("draft").status is TaskStatus.AWAITING_REVIEW
    # No more timers, however long it waits; a second deadline event changes nothing.
    run.advance(365 * 24 * 3600)
    assert due_timers(run.state, run.now) == []
    assert not run.apply(ReviewDue(escalation.id)).applied
    # A reviewer can still decide it.
    assert decide(run, overdue, "approve").applied
    assert run.task("draft").status is TaskStatus.COMPLETED


def test_a_decided_escalation_has_no_deadline() -> None:
    run, escalation = waiting_run("{action: reject}")
    decision = ReviewDecision("d-1", "approve", "ada", run.now)
    decided = escalation.evolve(status=EscalationStatus.DECIDED, version=2, decision=decision)
    run.state = run.state.with_escalation(decided)
    run.advance(SLA.total_seconds() + 1)

    assert not run.apply(ReviewDue(escalation.id)).applied
    assert not any(isinstance(t, ReviewDue) for t in due_timers(run.state, run.now))


# --- decided but not applied ---------------------------------------------------------------


def test_a_decision_not_applied_after_the_grace_period_is_applied_from_the_state() -> None:
    run, escalation = escalated_draft()
    accepted = ReviewDecision("d-lost", "edit", "ada", run.now, output={"text": "Edited."})
    decided = escalation.evolve(status=EscalationStatus.DECIDED, version=2, decision=accepted)
    run.state = run.state.with_escalation(decided)

    run.advance(9)
    assert due_timers(run.state, run.now, decision_grace_s=10) == []
    run.advance(1)
    timers = due_timers(run.state, run.now, decision_grace_s=10)
    assert timers == [DecisionMade(escalation.id, accepted, 2, escalation.digest)]

    applied = run.apply(timers[0])

    assert applied.applied
    assert run.task("draft").output == {"text": "Edited."}
    assert run.state.escalations[escalation.id].status is EscalationStatus.RESOLVED
    later = due_timers(run.state, run.now + timedelta(days=1))
    assert not [t for t in later if isinstance(t, DecisionMade | ReviewDue)]


def test_the_default_grace_period_is_ten_seconds() -> None:
    run, escalation = escalated_draft()
    accepted = ReviewDecision("d-lost", "approve", "ada", run.now)
    run.state = run.state.with_escalation(
        escalation.evolve(status=EscalationStatus.DECIDED, version=2, decision=accepted)
    )

    assert due_timers(run.state, run.now + timedelta(seconds=9.9)) == []
    assert len(due_timers(run.state, run.now + timedelta(seconds=10))) == 1


# --- escalations of workflows that end -----------------------------------------------------

PARALLEL = """\
type: parallel
steps:
  - name: draft
    capability: writer
    requires_approval: true
  - name: check
    capability: checker
"""


def test_a_failing_workflow_resolves_its_open_escalations() -> None:
    run = Run(load_playbook(PARALLEL), {})
    run.start()
    report(run, "draft")
    escalation = open_escalation_of(run, "draft")
    run.advance(3)

    run.fail("check", retryable=False)

    assert run.state.status is WorkflowStatus.FAILED
    closed = run.state.escalations[escalation.id]
    assert (closed.status, closed.resolved_at, closed.decision) == (
        EscalationStatus.RESOLVED,
        run.now,
        None,
    )
    assert run.task("draft").status is TaskStatus.CANCELLED
    late = decide(run, escalation, "approve")
    assert not late.applied
    assert late.note == "workflow already failed"
    assert due_timers(run.state, run.now + timedelta(days=2)) == []


def test_a_failing_workflow_resolves_a_decided_escalation_keeping_its_decision() -> None:
    run = Run(load_playbook(PARALLEL), {})
    run.start()
    report(run, "draft")
    escalation = open_escalation_of(run, "draft")
    accepted = ReviewDecision("d-1", "approve", "ada", run.now)
    run.state = run.state.with_escalation(
        escalation.evolve(status=EscalationStatus.DECIDED, version=2, decision=accepted)
    )

    run.fail("check", retryable=False)

    closed = run.state.escalations[escalation.id]
    assert (closed.status, closed.decision) == (EscalationStatus.RESOLVED, accepted)
    assert due_timers(run.state, run.now + timedelta(minutes=5)) == []


# --- the digest ----------------------------------------------------------------------------


def test_the_digest_is_the_sha256_of_the_canonical_json() -> None:
    content = {"b": [1, 2], "a": {"y": "é", "x": None}}

    expected = hashlib.sha256('{"a":{"x":null,"y":"é"},"b":[1,2]}'.encode()).hexdigest()
    assert canonical_digest(content) == expected


def test_the_digest_ignores_key_order_and_changes_with_the_content() -> None:
    one = {"output": {"text": "a", "n": 1}, "step": "draft"}
    same = {"step": "draft", "output": {"n": 1, "text": "a"}}

    assert canonical_digest(one) == canonical_digest(same)
    assert canonical_digest(one) != canonical_digest({**one, "step": "other"})
    assert canonical_digest(one) != canonical_digest({**one, "output": {"text": "a", "n": 2}})
    assert canonical_digest(one) != canonical_digest({**one, "extra": None})


def test_escalations_of_different_outputs_have_different_digests() -> None:
    _, first = escalated_draft(confidence=0.5)
    _, second = escalated_draft(confidence=0.6)

    assert first.digest == canonical_digest(first.content)
    assert first.digest != second.digest


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(content=st.dictionaries(st.text(max_size=6), _json, max_size=6), data=st.data())
def test_the_digest_of_any_content_ignores_key_order(
    content: dict[str, Any], data: st.DataObject
) -> None:
    shuffled = dict(data.draw(st.permutations(list(content.items()))))

    assert canonical_digest(shuffled) == canonical_digest(content)


# --- properties over decisions and timeouts ------------------------------------------------

_EVENTS = st.sampled_from(
    [
        "approve",
        "edit",
        "bad_edit",
        "reject",
        "retry",
        "stale",
        "wrong_digest",
        "replay",
        "deadline",
        "result",
        "late_result",
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    on_timeout=st.sampled_from([REASSIGN, "{action: reject}", "{action: wait}"]),
    events=st.lists(_EVENTS, max_size=25),
)
def test_no_sequence_of_decisions_and_timeouts_completes_a_step_without_approval(
    on_timeout: str, events: list[str]
) -> None:
    run = Run(load_playbook(timing(on_timeout, "{goto: draft}")), {})
    run.start()
    report(run, "draft", {"text": "proposal 1"})
    approved: list[dict[str, Any]] = []
    last: tuple[EscalationState, ReviewDecision] | None = None
    proposals = 1
    for event in events:
        if run.task("draft").status is TaskStatus.COMPLETED:
            break
        if event in ("result", "late_result"):
            draft = run.task("draft")
            if draft.status is TaskStatus.DISPATCHED and event == "result":
                proposals += 1
                report(run, "draft", {"text": f"proposal {proposals}"})
            elif draft.attempt > 1:
                report(run, "draft", {"text": "late"}, attempt=draft.attempt - 1)
            continue
        pending = [
            e for e in run.state.escalations.values() if e.status is EscalationStatus.PENDING
        ]
        assert len(pending) <= 1
        if event == "deadline":
            run.advance(SLA.total_seconds())
            for timer in due_timers(run.state, run.now):
                run.apply(timer)
            continue
        if event == "replay":
            if last is not None:
                escalation, decision = last
                assert not run.apply(
                    DecisionMade(escalation.id, decision, escalation.version, escalation.digest)
                ).applied
            continue
        if not pending:
            continue
        (escalation,) = pending
        proposal = run.task("draft").proposal
        # A retry spends an attempt: refused once the step has used them all.
        spent = refuse_retry(escalation, run.task("draft")) is not None
        action = {"bad_edit": "edit", "stale": "approve", "wrong_digest": "approve"}.get(
            event, event
        )
        output = {"text": "edited"} if event == "edit" else None
        result = decide(
            run,
            escalation,
            action,
            output=output,
            reason="no",
            version=escalation.version + 1 if event == "stale" else None,
            digest=canonical_digest({}) if event == "wrong_digest" else None,
        )
        refused = event in ("bad_edit", "stale", "wrong_digest") or (event == "retry" and spent)
        assert result.applied == (not refused)
        if result.applied:
            resolved = run.state.escalations[escalation.id]
            assert resolved.status is EscalationStatus.RESOLVED
            assert resolved.decision is not None
            last = (escalation, resolved.decision)
            if action in ("approve", "edit"):
                approved.append(dict(output or proposal or {}))

    draft = run.task("draft")
    if draft.status is TaskStatus.COMPLETED:
        assert approved
        assert draft.output == approved[-1]
    else:
        assert not approved
    assert run.state.status is not WorkflowStatus.COMPLETED or approved
