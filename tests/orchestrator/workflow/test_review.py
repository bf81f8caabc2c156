"""Reviews in the state machine: what escalates, and what the reviewer is shown. Pure: no
fixtures, a clock only the test moves. The helpers here (``report``, ``decide``, ...) serve
the other ``test_review_*`` modules too."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from itertools import count
from typing import Any

import pytest

from orchestrator.playbooks.model import ReviewPolicy, Step
from orchestrator.workflow.escalation import canonical_digest, escalation_id
from orchestrator.workflow.messages import (
    AnnounceTaskEscalated,
    Decision,
    DecisionMade,
    RecordReviewEvent,
    TaskSucceeded,
)
from orchestrator.workflow.review import review_needed
from orchestrator.workflow.state import (
    Attempt,
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
)

# A reviewed draft (low confidence escalates; edits must match the schema), then publish.
REVIEWED = """\
type: reviewed
steps:
  - name: draft
    capability: writer
    timeout: 30s
    retries: 1
    escalate_below: 0.8
    input: {topic: $goal.topic}
    review:
      group: editors
      priority: 2
      sla: 1h
      warn_before: 10m
      on_timeout: {action: reassign, group: seniors}
    output_schema:
      type: object
      required: [text]
      properties: {text: {type: string, minLength: 1}}
      additionalProperties: false
  - name: publish
    capability: publisher
    depends_on: [draft]
    input: {text: $steps.draft.output.text}
output:
  text: $steps.draft.output.text
  url: $steps.publish.output.url
"""


def rejecting(on_reject: str) -> str:
    """A playbook whose approved ``draft`` reads ``research``; ``side`` runs beside them."""
    return f"""\
type: rejecting
steps:
  - name: research
    capability: researcher
    retries: 1
  - name: side
    capability: sider
  - name: draft
    capability: writer
    depends_on: [research]
    requires_approval: true
    on_reject: {on_reject}
    input: {{notes: $steps.research.output.notes}}
  - name: publish
    capability: publisher
    depends_on: [draft, side]
    input: {{text: $steps.draft.output.text}}
"""


_ids = count(1)


def report(
    run: Run,
    step: str,
    output: Mapping[str, Any] | None = None,
    *,
    confidence: float = 0.9,
    escalate: str | None = None,
    attempt: int | None = None,
) -> Decision:
    """An agent's result for a step's current attempt (unless told)."""
    task = run.task(step)
    return run.apply(
        TaskSucceeded(
            task.id,
            attempt if attempt is not None else task.attempt,
            output if output is not None else {"text": f"{step} output"},
            confidence=confidence,
            reasoning=("checked the sources",),
            usage={"input_tokens": 7},
            agent={"capability": task.capability, "version": "1", "instance": "i"},
            escalate=escalate,
        )
    )


def open_escalation_of(run: Run, step: str) -> EscalationState:
    """The step's escalation that is not resolved (exactly one)."""
    (found,) = [
        e
        for e in run.state.escalations.values()
        if e.step == step and e.status is not EscalationStatus.RESOLVED
    ]
    return found


def decide(
    run: Run,
    escalation: EscalationState,
    action: str,
    *,
    output: Mapping[str, Any] | None = None,
    reason: str | None = None,
    version: int | None = None,
    digest: str | None = None,
    decision_id: str | None = None,
    reviewer: str = "ada",
) -> Decision:
    """A reviewer's decision on what they saw (the escalation's version and digest)."""
    decision = ReviewDecision(
        decision_id or f"decision-{next(_ids)}", action, reviewer, run.now, output, reason
    )
    return run.apply(
        DecisionMade(
            escalation.id,
            decision,
            escalation.version if version is None else version,
            escalation.digest if digest is None else digest,
        )
    )


def escalated_draft(confidence: float = 0.5) -> tuple[Run, EscalationState]:
    """A reviewed run whose draft (low confidence) waits for a reviewer since T0 + 2 s."""
    run = Run(load_playbook(REVIEWED), {"topic": "refunds"})
    run.start()
    run.advance(2)
    report(run, "draft", {"text": "Refunds take 5 days."}, confidence=confidence)
    return run, open_escalation_of(run, "draft")


def rejecting_run(on_reject: str) -> tuple[Run, EscalationState]:
    """A rejecting run with research and side done and the draft waiting for approval."""
    run = Run(load_playbook(rejecting(on_reject)), {})
    run.start()
    report(run, "research", {"notes": "first notes"})
    report(run, "side", {"done": True})
    run.advance(5)
    report(run, "draft", {"text": "first draft"})
    return run, open_escalation_of(run, "draft")


# --- what escalates ------------------------------------------------------------------------


def _result(confidence: float, escalate: str | None = None) -> TaskSucceeded:
    return TaskSucceeded("t", 1, {"x": 1}, confidence, escalate=escalate)


def test_an_ordinary_confident_result_needs_no_review() -> None:
    step = Step("s", "c", escalate_below=0.8)

    assert review_needed(step, _result(0.9)) is None
    assert review_needed(Step("s", "c"), _result(0.01)) is None


def test_confidence_at_the_threshold_is_not_below_it() -> None:
    assert review_needed(Step("s", "c", escalate_below=0.8), _result(0.8)) is None


def test_the_agent_asking_for_a_human_escalates() -> None:
    found = review_needed(Step("s", "c"), _result(0.99, "the customer threatens to sue"))

    assert found == ("agent_request", "the agent asked for a human: the customer threatens to sue")


def test_low_confidence_escalates_naming_both_numbers() -> None:
    found = review_needed(Step("s", "c", escalate_below=0.8), _result(0.5))

    assert found == ("low_confidence", "confidence 0.50 is below the step's threshold 0.80")


def test_a_step_requiring_approval_escalates_every_result() -> None:
    found = review_needed(Step("s", "c", requires_approval=True), _result(1.0))

    assert found == ("approval", "the step requires a reviewer's approval")


@pytest.mark.parametrize(
    ("escalate", "confidence", "approval", "kind", "reasons"),
    [
        ("why", 0.5, True, "agent_request", ["agent", "confidence", "approval"]),
        ("why", 0.5, False, "agent_request", ["agent", "confidence"]),
        ("why", 0.9, True, "agent_request", ["agent", "approval"]),
        (None, 0.5, True, "low_confidence", ["confidence", "approval"]),
    ],
)
def test_several_sources_take_the_first_kind_and_list_every_reason(
    escalate: str | None, confidence: float, approval: bool, kind: str, reasons: list[str]
) -> None:
    texts = {
        "agent": "the agent asked for a human: why",
        "confidence": f"confidence {confidence:.2f} is below the step's threshold 0.80",
        "approval": "the step requires a reviewer's approval",
    }
    step = Step("s", "c", escalate_below=0.8, requires_approval=approval)

    found = review_needed(step, _result(confidence, escalate))

    assert found == (kind, "; ".join(texts[r] for r in reasons))


# --- an escalated result -------------------------------------------------------------------


def test_an_escalated_result_waits_as_a_proposal_and_nothing_downstream_runs() -> None:
    run = Run(load_playbook(REVIEWED), {"topic": "refunds"})
    run.start()
    run.advance(2)

    decision = report(run, "draft", {"text": "Refunds take 5 days."}, confidence=0.5)

    draft = run.task("draft")
    assert decision.applied
    assert draft.status is TaskStatus.AWAITING_REVIEW
    assert draft.proposal == {"text": "Refunds take 5 days."}
    assert draft.output is None
    assert draft.confidence == 0.5
    assert draft.reasoning == ("checked the sources",)
    assert draft.lease_expires_at is None
    assert draft.finished_at is None
    assert draft.attempts == (Attempt(1, T0, T0 + timedelta(seconds=2), "completed"),)
    assert run.task("publish").status is TaskStatus.PENDING
    assert run.task("publish").attempt == 0
    assert run.state.status is WorkflowStatus.RUNNING
    assert dispatched_steps(decision) == []


def test_an_escalation_shows_exactly_what_the_reviewer_decides_on() -> None:
    run, escalation = escalated_draft()

    opened = T0 + timedelta(seconds=2)
    reason = "confidence 0.50 is below the step's threshold 0.80"
    content = {
        "workflow_id": WORKFLOW_ID,
        "goal_type": "reviewed",
        "step": "draft",
        "capability": "writer",
        "attempt": 1,
        "goal_input": {"topic": "refunds"},
        "task_input": {"topic": "refunds"},
        "output": {"text": "Refunds take 5 days."},
        "confidence": 0.5,
        "reasoning": ["checked the sources"],
        "reason": reason,
    }
    assert escalation == EscalationState(
        id=escalation_id(run.task("draft").id, 1),
        task_id=run.task("draft").id,
        step="draft",
        attempt=1,
        kind="low_confidence",
        reason=reason,
        status=EscalationStatus.PENDING,
        priority=2,
        group="editors",
        version=1,
        digest=canonical_digest(content),
        content=content,
        opened_at=opened,
        due_at=opened + timedelta(hours=1),
        warn_at=opened + timedelta(minutes=50),
    )
    assert list(run.state.escalations) == [escalation.id]


def test_review_defaults_are_the_reviewers_group_a_day_and_a_warning_in_the_last_fifth() -> None:
    _, escalation = rejecting_run("fail")

    opened = T0 + timedelta(seconds=5)
    assert (escalation.kind, escalation.group, escalation.priority) == (
        "approval",
        "reviewers",
        3,
    )
    assert escalation.due_at == opened + timedelta(hours=24)
    assert escalation.warn_at == escalation.due_at - timedelta(hours=24) / 5
    assert ReviewPolicy().warning_s == 24 * 3600 / 5


def test_escalating_announces_it_and_records_its_opening() -> None:
    run = Run(load_playbook(REVIEWED), {"topic": "refunds"})
    run.start()

    decision = report(run, "draft", confidence=0.99, escalate="legal wording")

    escalation = open_escalation_of(run, "draft")
    assert escalation.kind == "agent_request"
    assert decision.commands == (
        AnnounceTaskEscalated(escalation),
        RecordReviewEvent(
            escalation,
            "opened",
            "waypost",
            {"reason": "the agent asked for a human: legal wording"},
        ),
    )


def test_a_redelivered_result_does_not_open_a_second_escalation() -> None:
    run, escalation = escalated_draft()
    waiting = run.state

    again = report(run, "draft", {"text": "Refunds take 5 days."}, confidence=0.5, attempt=1)

    assert not again.applied
    assert again.commands == ()
    assert run.state is waiting
    assert list(run.state.escalations) == [escalation.id]
