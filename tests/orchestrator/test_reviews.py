"""Reviewer operations on the real PostgreSQL: decisions bound to version and digest,
exactly one decision per escalation (under 50 concurrent reviewers too), claims, comments
bound to the version the commenter saw, the audit trail, the decision event written with
the decision, and what a decision is observed by (its span, the decision-time metric)
recorded only once it committed.

Escalations are made the way production makes them: a goal and an agent's result go
through the intake (and so the applier); decisions come back through the intake as the
``decision.recorded`` events the review operations queued.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_span_id
from sqlalchemy import Engine, func, select

from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.playbooks.versions import PlaybookVersions
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.publishing.records import Outgoing
from orchestrator.review import (
    Accepted,
    DecisionRequest,
    EscalationNotFound,
    InvalidDecision,
    ReviewConflict,
    Reviewer,
    Reviews,
)
from orchestrator.service.applier import Applier
from orchestrator.service.intake import Intake, to_input
from orchestrator.service.reconciler import Reconciler
from orchestrator.store import audit, outbox
from orchestrator.store import escalations as escalation_rows
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.audit import AuditEntry
from orchestrator.store.tables import audit_events
from orchestrator.workflow.machine import task_id
from orchestrator.workflow.state import (
    EscalationState,
    EscalationStatus,
    TaskStatus,
    WorkflowState,
    WorkflowStatus,
)
from waypost.bus.base import TopicSpec
from waypost.bus.loop import Delivery
from waypost.bus.memory import MemoryBus
from waypost.bus.records import ReceivedRecord
from waypost.db import make_engine
from waypost.events import (
    AgentInfo,
    DecisionRecorded,
    Event,
    GoalSubmitted,
    Payload,
    TaskCompleted,
    TaskDispatched,
    WorkflowCompleted,
    WorkflowFailed,
    default_codec,
)
from waypost.stack.postgres import EmbeddedPostgres
from waypost.telemetry import NO_TRACING, Tracing
from waypost.telemetry.tracing import DerivedIds
from waypost.topics import Topics

pytestmark = pytest.mark.integration

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2100, 1, 1, tzinfo=UTC)  # every outbox row is older than this

# One reviewed step: every result waits for approval; edits must keep a non-empty text.
REVIEWED = """\
type: test.reviewed
steps:
  - name: draft
    capability: echo
    requires_approval: true
    input: {text: $goal.text}
    review:
      group: editors
      priority: 2
      sla: 1m
      warn_before: 10s
      on_timeout: {action: reassign, group: seniors}
    output_schema:
      type: object
      required: [text]
      properties: {text: {type: string, minLength: 1}}
output:
  text: $steps.draft.output.text
"""


def write_playbooks(directory: Path) -> Path:
    """The reviewed playbook, in a directory of its own."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "reviewed.yaml").write_text(REVIEWED)
    return directory


class ReviewHarness:
    """Intake, reconciler and review operations on one schema, on a clock the test moves.

    The orchestrator publishes to the in-memory bus (our fake of the broker interface);
    reviewers' decision events stay in the outbox until ``deliver_decisions`` hands them
    to the intake, as the relay and the consumer would.
    """

    def __init__(
        self,
        engine: Engine,
        namespace: str,
        playbook_dir: Path,
        capabilities: tuple[str, ...] = ("echo", "triage", "knowledge", "reply"),
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self.engine = engine
        self.topics = Topics(namespace)
        self.codec = default_codec()
        self.now = T0
        self._offset = 0
        self.bus = MemoryBus()
        self.bus.admin().ensure_topics(
            [TopicSpec(t, 1) for t in self.topics.all_topics(capabilities)]
        )
        self.playbooks = PlaybookRegistry.load([playbook_dir])
        applier = Applier(
            playbooks=self.playbooks,
            outgoing=Outgoing(self.topics, self.codec, tracing=tracing),
            random=random.Random(7).random,
        )
        publisher = OutboxPublisher(engine, self.bus.publisher("orchestrator"))
        self.intake = Intake(engine=engine, applier=applier, publisher=publisher, clock=self.clock)
        self.reconciler = Reconciler(
            engine=engine,
            applier=applier,
            admin=self.bus.admin(),
            topic_specs=[],
            publisher=publisher,
            clock=self.clock,
        )
        self.decided: list[tuple[str, float]] = []  # what the decision-time metric was told
        self.reviews = Reviews(
            PlaybookVersions(self.playbooks),
            Outgoing(self.topics, self.codec, source="waypost/http", tracing=tracing),
            on_decided=lambda action, waited: self.decided.append((action, waited)),
        )

    def clock(self) -> datetime:
        return self.now

    def deliver(self, event: Event, topic: str) -> None:
        """Hand one event to the intake as the consumer loop would: bytes, then decoded."""
        encoded = self.codec.encode(event)
        self._offset += 1
        record = ReceivedRecord(topic, 0, self._offset, encoded.key, encoded.value, encoded.headers)
        self.intake.handle([Delivery(record, self.codec.decode(record.value, record.headers))])

    def escalate(
        self,
        goal_id: str,
        *,
        goal_input: dict[str, Any] | None = None,
        output: dict[str, Any] | None = None,
        goal_type: str = "test.reviewed",
        step: str = "draft",
        confidence: float = 0.9,
    ) -> EscalationState:
        """Plan a goal and report its step's result, which waits for a reviewer."""
        goal = GoalSubmitted(type=goal_type, input=goal_input or {"text": "hello"})
        self.deliver(Event(goal, source="tests", id=goal_id), self.topics.goals)
        state = self.state(goal_id)
        task = state.tasks[step]
        result = TaskCompleted(
            workflow_id=goal_id,
            task_id=task_id(goal_id, step),
            step=step,
            capability=task.capability,
            attempt=task.attempt,
            output=output or {"text": "a proposal"},
            confidence=confidence,
            agent=AgentInfo(capability=task.capability, version="1", instance="test:1"),
        )
        self.deliver(Event(result, source="tests/agent"), self.topics.results)
        (escalation,) = [e for e in self.state(goal_id).escalations.values() if e.step == step]
        return escalation

    def request(
        self,
        escalation: EscalationState,
        action: str,
        *,
        output: dict[str, Any] | None = None,
        reason: str | None = None,
        version: int | None = None,
        digest: str | None = None,
    ) -> DecisionRequest:
        """A decision on what the reviewer saw (the escalation's version and digest)."""
        return DecisionRequest(
            escalation.id,
            action,  # type: ignore[arg-type]
            escalation.version if version is None else version,
            escalation.digest if digest is None else digest,
            output,
            reason,
        )

    def decide(
        self, request: DecisionRequest, reviewer: str = "ada", *, override: bool = False
    ) -> Accepted:
        """One decision in its own transaction, observed once it committed."""
        with self.engine.begin() as conn:
            accepted = self.reviews.decide(
                conn, request=request, reviewer=Reviewer(reviewer, override), now=self.now
            )
        self.reviews.committed(accepted)
        return accepted

    def comment(self, escalation: EscalationState, text: str, version: int | None = None) -> None:
        """A comment by ada on the version she saw (the escalation's, unless told)."""
        with self.engine.begin() as conn:
            self.reviews.comment(
                conn,
                escalation_id=escalation.id,
                text=text,
                version=escalation.version if version is None else version,
                reviewer=Reviewer("ada"),
                now=self.now,
            )

    def report(self, workflow_id: str, output: dict[str, Any], step: str = "draft") -> None:
        """The agent's result of the step's current attempt."""
        task = self.state(workflow_id).tasks[step]
        result = TaskCompleted(
            workflow_id=workflow_id,
            task_id=task.id,
            step=step,
            capability=task.capability,
            attempt=task.attempt,
            output=output,
            confidence=0.9,
            agent=AgentInfo(capability=task.capability, version="1", instance="test:1"),
        )
        self.deliver(Event(result, source="tests/agent"), self.topics.results)

    def state(self, workflow_id: str) -> WorkflowState:
        with self.engine.connect() as conn:
            found = workflow_rows.get(conn, workflow_id=workflow_id)
        assert found is not None
        return found

    def escalation(self, escalation_id: str) -> EscalationState:
        with self.engine.connect() as conn:
            found = escalation_rows.get(conn, escalation_id=escalation_id)
        assert found is not None
        return found[1]

    def queued_decisions(self) -> list[tuple[int, Event]]:
        """decision.recorded events in the outbox (left in place)."""
        with self.engine.connect() as conn:
            rows = outbox.claim(conn, limit=1000, created_before=LATER)
        return [
            (row_id, self.codec.decode(r.value, r.headers))
            for row_id, r in rows
            if r.topic == self.topics.decisions
        ]

    def deliver_decisions(self) -> int:
        """Relay the queued decision events to the intake (and forget them)."""
        queued = self.queued_decisions()
        for _, event in queued:
            self.deliver(event, self.topics.decisions)
        with self.engine.begin() as conn:
            outbox.remove(conn, ids=[row_id for row_id, _ in queued])
        return len(queued)

    def audit(self, escalation_id: str) -> list[AuditEntry]:
        with self.engine.connect() as conn:
            return audit.for_escalation(conn, escalation_id=escalation_id)

    def published(self, topic: str) -> list[Payload]:
        """Payloads the orchestrator published on a topic, in order."""
        return [
            self.codec.decode(r.value, r.headers).payload for r in self.bus.broker.records(topic)
        ]


@pytest.fixture
def harness(engine: Engine, namespace: str, tmp_path: Path) -> ReviewHarness:
    return ReviewHarness(engine, namespace, write_playbooks(tmp_path / "playbooks"))


@pytest.fixture
def spans() -> InMemorySpanExporter:
    """Where the traced harness's spans go (ids derived as in production)."""
    return InMemorySpanExporter()


@pytest.fixture
def traced(
    engine: Engine, namespace: str, tmp_path: Path, spans: InMemorySpanExporter
) -> ReviewHarness:
    """A harness whose orchestrator and reviewers record spans into ``spans``."""
    provider = TracerProvider(id_generator=DerivedIds())
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return ReviewHarness(
        engine, namespace, write_playbooks(tmp_path / "playbooks"), tracing=Tracing(provider)
    )


def named(spans: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    """The finished spans whose name starts with ``prefix``."""
    return [s for s in spans.get_finished_spans() if s.name.startswith(prefix)]


# --- decisions and what they resume ---------------------------------------------------------


def test_an_approval_is_recorded_then_resumes_the_workflow_with_the_proposal(
    harness: ReviewHarness,
) -> None:
    escalation = harness.escalate("g-approve", output={"text": "Refunds take 5 days."})
    assert escalation.status is EscalationStatus.PENDING
    harness.now += timedelta(seconds=5)

    accepted = harness.decide(harness.request(escalation, "approve"))

    decided = harness.escalation(escalation.id)
    assert decided == accepted.escalation
    assert (decided.status, decided.version) == (EscalationStatus.DECIDED, 2)
    assert decided.decision is not None
    assert (decided.decision.id, decided.decision.action, decided.decision.reviewer) == (
        accepted.decision_id,
        "approve",
        "ada",
    )
    assert harness.state("g-approve").tasks["draft"].status is TaskStatus.AWAITING_REVIEW
    ((_, event),) = harness.queued_decisions()
    assert event.id == accepted.decision_id
    assert event.subject == escalation.id
    assert event.payload == DecisionRecorded(
        escalation_id=escalation.id,
        workflow_id="g-approve",
        task_id=escalation.task_id,
        action="approve",
        reviewer="ada",
        version=1,
        digest=escalation.digest,
    )

    assert harness.deliver_decisions() == 1

    state = harness.state("g-approve")
    assert state.status is WorkflowStatus.COMPLETED
    assert state.output == {"text": "Refunds take 5 days."}
    assert state.escalations[escalation.id].status is EscalationStatus.RESOLVED
    completed = [
        p
        for p in harness.published(harness.topics.workflow_events)
        if isinstance(p, WorkflowCompleted)
    ]
    assert [c.workflow_id for c in completed] == ["g-approve"]


def test_an_edit_resumes_with_the_edited_output(harness: ReviewHarness) -> None:
    escalation = harness.escalate("g-edit")

    harness.decide(harness.request(escalation, "edit", output={"text": "Better."}))
    harness.deliver_decisions()

    state = harness.state("g-edit")
    assert state.status is WorkflowStatus.COMPLETED
    assert state.tasks["draft"].output == {"text": "Better."}


def test_an_edit_breaking_the_output_schema_is_refused_with_its_errors(
    harness: ReviewHarness,
) -> None:
    escalation = harness.escalate("g-bad-edit")

    with pytest.raises(InvalidDecision) as refused:
        harness.decide(harness.request(escalation, "edit", output={"text": ""}))

    assert refused.value.status == 422
    assert "output schema" in str(refused.value)
    (error,) = refused.value.detail["errors"]
    assert error["field"] == "text"
    assert error["message"]
    assert harness.escalation(escalation.id) == escalation
    assert harness.queued_decisions() == []


@pytest.mark.parametrize(
    ("action", "fields", "message"),
    [
        ("reject", {}, "a rejection needs a reason"),
        ("reject", {"reason": "   "}, "a rejection needs a reason"),
        ("edit", {}, "an edit needs the edited output"),
        ("promote", {}, "unknown action 'promote'"),
    ],
)
def test_incomplete_decisions_are_refused(
    harness: ReviewHarness, action: str, fields: dict[str, Any], message: str
) -> None:
    escalation = harness.escalate(f"g-incomplete-{action}-{len(fields)}")

    with pytest.raises(InvalidDecision, match=message):
        harness.decide(harness.request(escalation, action, **fields))

    assert harness.escalation(escalation.id).status is EscalationStatus.PENDING


def test_a_rejection_fails_the_workflow_with_the_reviewers_reason(harness: ReviewHarness) -> None:
    escalation = harness.escalate("g-reject")

    harness.decide(harness.request(escalation, "reject", reason="Wrong tone."), "grace")
    harness.deliver_decisions()

    state = harness.state("g-reject")
    assert state.status is WorkflowStatus.FAILED
    assert state.reason == "reviewer grace rejected step 'draft': Wrong tone."
    (failed,) = [
        p
        for p in harness.published(harness.topics.workflow_events)
        if isinstance(p, WorkflowFailed)
    ]
    assert failed.reason == state.reason


def test_a_retry_dispatches_the_next_attempt(harness: ReviewHarness) -> None:
    escalation = harness.escalate("g-retry")

    harness.decide(harness.request(escalation, "retry"))
    harness.deliver_decisions()

    draft = harness.state("g-retry").tasks["draft"]
    assert (draft.status, draft.attempt) == (TaskStatus.DISPATCHED, 2)
    dispatched = [
        p.attempt
        for p in harness.published(harness.topics.tasks("echo"))
        if isinstance(p, TaskDispatched)
    ]
    assert dispatched == [1, 2]


def test_a_retry_spends_an_attempt_and_is_refused_when_none_is_left(
    harness: ReviewHarness,
) -> None:
    escalation = harness.escalate("g-last")  # attempt 1 of the draft's 3
    for attempt in (2, 3):
        harness.decide(harness.request(escalation, "retry"))
        harness.deliver_decisions()
        harness.report("g-last", {"text": f"attempt {attempt}"})
        (escalation,) = [
            e
            for e in harness.state("g-last").escalations.values()
            if e.status is EscalationStatus.PENDING
        ]
    draft = harness.state("g-last").tasks["draft"]
    assert (draft.attempt, draft.max_attempts, escalation.attempt) == (3, 3, 3)

    with pytest.raises(InvalidDecision) as refused:
        harness.decide(harness.request(escalation, "retry"))

    assert refused.value.status == 422
    assert str(refused.value) == (
        "step 'draft' has used all 3 of its attempts, so it cannot be retried; approve, "
        "edit or reject the result"
    )
    assert refused.value.detail == {"attempt": 3, "max_attempts": 3}
    assert harness.escalation(escalation.id).status is EscalationStatus.PENDING
    assert harness.queued_decisions() == []
    harness.decide(harness.request(escalation, "approve"))  # what is left to do
    harness.deliver_decisions()
    state = harness.state("g-last")
    assert state.status is WorkflowStatus.COMPLETED
    assert (state.tasks["draft"].attempt, state.tasks["draft"].max_attempts) == (3, 3)


# --- conflicts ------------------------------------------------------------------------------


def test_a_decision_on_an_older_version_or_other_content_is_a_conflict(
    harness: ReviewHarness,
) -> None:
    escalation = harness.escalate("g-stale")

    with pytest.raises(ReviewConflict, match="you saw version 7") as stale:
        harness.decide(harness.request(escalation, "approve", version=7))
    with pytest.raises(ReviewConflict):
        harness.decide(harness.request(escalation, "approve", digest="0" * 64))

    assert stale.value.status == 409
    assert stale.value.detail == {"version": 1}
    assert harness.escalation(escalation.id).status is EscalationStatus.PENDING
    assert harness.queued_decisions() == []


def test_a_second_decision_is_a_conflict_naming_the_first(harness: ReviewHarness) -> None:
    escalation = harness.escalate("g-twice")
    harness.decide(harness.request(escalation, "approve"), "ada")

    with pytest.raises(ReviewConflict, match="already decided: approve by ada at 2030") as second:
        harness.decide(harness.request(escalation, "reject", reason="no"), "bob")
    # Even on the version the first decision produced.
    with pytest.raises(ReviewConflict, match="already decided"):
        harness.decide(harness.request(escalation, "approve", version=2), "bob")

    assert second.value.detail == {"escalation_status": "decided"}
    assert len(harness.queued_decisions()) == 1


def test_an_unknown_escalation_is_not_found(harness: ReviewHarness) -> None:
    harness.escalate("g-known")
    request = DecisionRequest("no-such-id", "approve", 1, "0" * 64)

    for missing in (request, DecisionRequest("bad\x00id", "approve", 1, "0" * 64)):
        with pytest.raises(EscalationNotFound) as found:
            harness.decide(missing)
        assert found.value.status == 404


def test_an_escalation_claimed_by_another_can_only_be_decided_by_an_admin(
    harness: ReviewHarness,
) -> None:
    escalation = harness.escalate("g-claimed")
    with harness.engine.begin() as conn:
        harness.reviews.claim(
            conn, escalation_id=escalation.id, reviewer=Reviewer("ada"), now=harness.now
        )

    with pytest.raises(ReviewConflict, match="claimed by ada") as conflict:
        harness.decide(harness.request(escalation, "approve"), "bob")
    accepted = harness.decide(harness.request(escalation, "approve"), "root", override=True)

    assert conflict.value.detail == {"assignee": "ada"}
    assert accepted.escalation.decision is not None
    assert accepted.escalation.decision.reviewer == "root"


# --- claims, assignment, comments and their audit trail -------------------------------------


def test_claims_assignments_and_comments_are_audited_with_version_and_digest(
    harness: ReviewHarness,
) -> None:
    escalation = harness.escalate("g-audit")
    eid = escalation.id
    ada, bob, root = Reviewer("ada"), Reviewer("bob"), Reviewer("root", may_override=True)
    with harness.engine.begin() as conn:
        claimed = harness.reviews.claim(conn, escalation_id=eid, reviewer=ada, now=harness.now)
        again = harness.reviews.claim(conn, escalation_id=eid, reviewer=ada, now=harness.now)
    assert (claimed.assignee, claimed.claimed_at) == ("ada", harness.now)
    assert again == claimed  # claiming your own again changes nothing
    with pytest.raises(ReviewConflict, match="claimed by ada"), harness.engine.begin() as conn:
        harness.reviews.claim(conn, escalation_id=eid, reviewer=bob, now=harness.now)
    with pytest.raises(ReviewConflict, match="claimed by ada"), harness.engine.begin() as conn:
        harness.reviews.unclaim(conn, escalation_id=eid, reviewer=bob, now=harness.now)
    with harness.engine.begin() as conn:
        harness.reviews.unclaim(conn, escalation_id=eid, reviewer=ada, now=harness.now)
        harness.reviews.assign(
            conn, escalation_id=eid, assignee="bob", reviewer=root, now=harness.now
        )
        harness.reviews.claim(conn, escalation_id=eid, reviewer=root, now=harness.now)
        harness.reviews.comment(
            conn, escalation_id=eid, text="  looks fine  ", version=1, reviewer=bob, now=harness.now
        )

    current = harness.escalation(eid)
    assert (current.assignee, current.version, current.status) == (
        "root",
        1,
        EscalationStatus.PENDING,
    )
    trail = harness.audit(eid)
    assert [(e.actor, e.action, e.detail) for e in trail] == [
        ("waypost", "opened", {"reason": "the step requires a reviewer's approval"}),
        ("ada", "claim", {"assignee": "ada"}),
        ("ada", "unclaim", {}),
        ("root", "assign", {"assignee": "bob"}),
        ("root", "claim", {"assignee": "root"}),
        ("bob", "comment", {"text": "looks fine"}),
    ]
    assert {(e.escalation_id, e.workflow_id, e.version, e.digest) for e in trail} == {
        (eid, "g-audit", 1, escalation.digest)
    }
    ((_, event),) = harness.queued_decisions()
    assert isinstance(event.payload, DecisionRecorded)
    assert (event.payload.action, event.payload.comment, event.payload.reason) == (
        "comment",
        "looks fine",
        None,
    )


def test_a_comment_needs_text_and_changes_no_workflow(harness: ReviewHarness) -> None:
    escalation = harness.escalate("g-comment")
    with pytest.raises(InvalidDecision, match="needs some text"), harness.engine.begin() as conn:
        harness.reviews.comment(
            conn,
            escalation_id=escalation.id,
            text="  ",
            version=1,
            reviewer=Reviewer("ada"),
            now=harness.now,
        )
    with harness.engine.begin() as conn:
        harness.reviews.comment(
            conn,
            escalation_id=escalation.id,
            text="hmm",
            version=1,
            reviewer=Reviewer("ada"),
            now=harness.now,
        )
    before = harness.state("g-comment")

    harness.deliver_decisions()

    assert harness.state("g-comment") == before


def test_a_comment_is_bound_to_the_version_the_commenter_saw(harness: ReviewHarness) -> None:
    escalation = harness.escalate("g-comment-version")
    harness.decide(harness.request(escalation, "approve"))  # version 2 from now on

    with pytest.raises(ReviewConflict) as stale:
        harness.comment(escalation, "approve it, please", version=1)
    harness.comment(escalation, "approved: the customer was called", version=2)

    assert stale.value.status == 409
    assert str(stale.value) == (
        "the escalation changed since you saw it (you saw version 1, it is at version 2); "
        "reload it and look again"
    )
    assert stale.value.detail == {"version": 2}
    trail = harness.audit(escalation.id)
    assert [(e.action, e.version) for e in trail] == [("opened", 1), ("decide", 1), ("comment", 2)]
    assert trail[-1].detail == {"text": "approved: the customer was called"}
    comments = [
        e.payload.comment
        for _, e in harness.queued_decisions()
        if isinstance(e.payload, DecisionRecorded) and e.payload.action == "comment"
    ]
    assert comments == ["approved: the customer was called"]


def test_the_decision_and_its_event_commit_or_roll_back_together(harness: ReviewHarness) -> None:
    escalation = harness.escalate("g-rollback")

    with harness.engine.connect() as conn:
        transaction = conn.begin()
        harness.reviews.decide(
            conn,
            request=harness.request(escalation, "approve"),
            reviewer=Reviewer("ada"),
            now=harness.now,
        )
        with harness.engine.connect() as other:
            # Not visible outside the transaction until it commits.
            assert outbox.backlog(other) == 0
        transaction.rollback()

    assert harness.queued_decisions() == []
    assert harness.escalation(escalation.id) == escalation
    assert [e.action for e in harness.audit(escalation.id)] == ["opened"]


# --- what a decision is observed by ---------------------------------------------------------


def test_a_decision_is_traced_and_counted_only_once_it_committed(
    traced: ReviewHarness, spans: InMemorySpanExporter
) -> None:
    escalation = traced.escalate("g-observed")
    traced.now += timedelta(seconds=30)
    with traced.engine.connect() as conn:
        transaction = conn.begin()
        traced.reviews.decide(
            conn,
            request=traced.request(escalation, "approve"),
            reviewer=Reviewer("ada"),
            now=traced.now,
        )
        transaction.rollback()

    assert named(spans, "review ") == []
    assert traced.decided == []

    traced.decide(traced.request(escalation, "approve"))

    (review,) = named(spans, "review draft")
    (escalate,) = named(spans, "escalate draft")
    assert traced.decided == [("approve", 30.0)]
    assert review.parent is not None
    assert review.parent.span_id == escalate.context.span_id
    assert review.start_time == escalate.start_time
    assert review.end_time is not None
    assert review.start_time is not None
    assert review.end_time - review.start_time == 30 * 10**9
    assert review.attributes is not None
    assert review.attributes["waypost.review.reviewer"] == "ada"
    # The decision's event continues from the span that was recorded.
    ((_, event),) = traced.queued_decisions()
    assert event.traceparent is not None
    assert event.traceparent.split("-")[2] == format_span_id(review.context.span_id)


def test_a_dispatch_built_again_after_its_transaction_rolled_back_has_one_create_span(
    traced: ReviewHarness, spans: InMemorySpanExporter
) -> None:
    escalation = traced.escalate("g-retried")
    traced.decide(traced.request(escalation, "retry"))
    ((_, event),) = traced.queued_decisions()
    found = to_input(event)
    assert found is not None
    # The decision's first application rolls back (the database went away before the
    # commit); the intake applies the redelivered event again.
    with traced.engine.connect() as conn:
        transaction = conn.begin()
        states = workflow_rows.lock(conn, ids=["g-retried"])
        applier = traced.intake.applier
        assert applier.apply(conn, states=states, inputs=[found], now=traced.now).applied
        transaction.rollback()

    traced.deliver_decisions()

    assert traced.state("g-retried").tasks["draft"].attempt == 2
    creates = [
        s
        for s in named(spans, f"create {traced.topics.tasks('echo')}")
        if s.attributes is not None and s.attributes["waypost.task.attempt"] == 2
    ]
    assert len(creates) == 1


# --- lost events and deadlines: the reconciler ---------------------------------------------


def test_a_decision_whose_event_was_lost_is_applied_by_the_reconciler(
    harness: ReviewHarness,
) -> None:
    escalation = harness.escalate("g-lost", output={"text": "kept"})
    harness.decide(harness.request(escalation, "approve"))
    with harness.engine.begin() as conn:  # the broker never got the event
        outbox.remove(conn, ids=[row_id for row_id, _ in harness.queued_decisions()])

    harness.now += timedelta(seconds=9)
    assert harness.reconciler.tick().applied == 0
    harness.now += timedelta(seconds=1)
    assert harness.reconciler.tick().applied == 1

    state = harness.state("g-lost")
    assert state.status is WorkflowStatus.COMPLETED
    assert state.output == {"text": "kept"}
    assert harness.reconciler.tick().applied == 0


def test_a_missed_deadline_reassigns_the_escalation(harness: ReviewHarness) -> None:
    escalation = harness.escalate("g-sla")
    with harness.engine.begin() as conn:
        harness.reviews.claim(
            conn, escalation_id=escalation.id, reviewer=Reviewer("ada"), now=harness.now
        )

    harness.now += timedelta(seconds=59)
    assert harness.reconciler.tick().applied == 0
    harness.now += timedelta(seconds=1)
    assert harness.reconciler.tick().applied == 1

    moved = harness.escalation(escalation.id)
    assert (moved.group, moved.version, moved.assignee) == ("seniors", 2, None)
    assert moved.due_at == harness.now + timedelta(minutes=1)
    timeout = harness.audit(escalation.id)[-1]
    assert (timeout.actor, timeout.action, timeout.version) == ("waypost:sla", "sla_timeout", 2)
    with pytest.raises(ReviewConflict):  # what the reviewer saw before is stale now
        harness.decide(harness.request(escalation, "approve"))


# --- 50 reviewers at once -------------------------------------------------------------------


@pytest.fixture
def wide_engine(postgres: EmbeddedPostgres, schema: str) -> Iterator[Engine]:
    """An engine with a connection for each of 50 concurrent reviewers."""
    engine = make_engine(postgres.url(), schema=schema, pool_size=50)
    yield engine
    engine.dispose()


def test_fifty_concurrent_decisions_accept_exactly_one_and_resume_once(
    harness: ReviewHarness, wide_engine: Engine
) -> None:
    escalation = harness.escalate("g-race", output={"text": "proposal"})
    start = threading.Barrier(50)
    outcomes: list[Any] = [None] * 50

    def reviewer(index: int) -> None:
        action = "approve" if index % 2 else "edit"
        output = {"text": f"edited by r{index}"} if action == "edit" else None
        request = harness.request(escalation, action, output=output)
        start.wait(timeout=30)
        try:
            with wide_engine.begin() as conn:
                outcomes[index] = harness.reviews.decide(
                    conn, request=request, reviewer=Reviewer(f"r{index}"), now=harness.now
                )
        except Exception as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=reviewer, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    accepted = [o for o in outcomes if isinstance(o, Accepted)]
    conflicts = [o for o in outcomes if isinstance(o, ReviewConflict)]
    assert len(accepted) == 1, outcomes
    assert len(conflicts) == 49, [o for o in outcomes if not isinstance(o, Accepted)]
    assert all("already decided" in str(c) for c in conflicts)
    (winner,) = accepted
    assert len(harness.queued_decisions()) == 1
    with harness.engine.connect() as conn:
        decides = conn.execute(
            select(func.count())
            .select_from(audit_events)
            .where(audit_events.c.escalation_id == escalation.id, audit_events.c.action == "decide")
        ).scalar_one()
    assert decides == 1

    # Delivered twice (at-least-once), and found again by the reconciler after the grace.
    ((_, event),) = harness.queued_decisions()
    harness.deliver(event, harness.topics.decisions)
    harness.deliver(event, harness.topics.decisions)
    harness.deliver_decisions()
    harness.now += timedelta(minutes=5)
    harness.reconciler.tick()

    state = harness.state("g-race")
    assert state.status is WorkflowStatus.COMPLETED
    decision = winner.escalation.decision
    assert decision is not None
    expected = decision.output if decision.action == "edit" else {"text": "proposal"}
    assert state.tasks["draft"].output == expected
    assert state.tasks["draft"].attempts[-1].outcome == "completed"
    completed = [
        p
        for p in harness.published(harness.topics.workflow_events)
        if isinstance(p, WorkflowCompleted)
    ]
    assert len(completed) == 1
    resolved = [e for e in harness.audit(escalation.id) if e.action == "resolved"]
    assert len(resolved) == 1
    assert resolved[0].actor == decision.reviewer
