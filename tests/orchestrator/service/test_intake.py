"""The intake on the real PostgreSQL: goals and results in, state and events out.

Events travel through the real codec (encoded to bytes and decoded back, as the consumer
loop hands them over); what the intake publishes after commit is decoded the same way.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from orchestrator import goals
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.publishing.records import Outgoing
from orchestrator.service.applier import Applier
from orchestrator.service.intake import Intake
from orchestrator.store import outbox
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.tables import tasks, workflows
from orchestrator.workflow.machine import task_id
from orchestrator.workflow.state import TaskStatus, WorkflowState, WorkflowStatus
from waypost.bus.base import TopicSpec
from waypost.bus.loop import Delivery
from waypost.bus.memory import MemoryBus
from waypost.bus.records import ReceivedRecord
from waypost.errors import InvalidEvent, UnexpectedEvent
from waypost.events import (
    AgentInfo,
    ErrorInfo,
    Event,
    GoalSubmitted,
    Payload,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
    default_codec,
)
from waypost.telemetry.tracing import derived_traceparent, trace_id_of
from waypost.topics import Topics

pytestmark = pytest.mark.integration

PLAYBOOKS = Path(__file__).resolve().parents[2] / "support" / "playbooks"
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2100, 1, 1, tzinfo=UTC)  # every outbox row is older than this
TRACEPARENT = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"
AGENT = AgentInfo(capability="echo", version="1", instance="test:1")


class Harness:
    """An intake on this test's schema, with a clock the test moves.

    It publishes through the in-memory bus (our own fake of the broker interface), with
    every topic of the namespace provisioned, so each test sees exactly the events the
    intake sent, in order per topic; ``provisioned=False`` makes the broker refuse them.
    """

    def __init__(
        self,
        engine: Engine,
        namespace: str,
        *,
        provisioned: bool = True,
        defer_removal: bool = False,
    ) -> None:
        self.engine = engine
        self.topics = Topics(namespace)
        self.codec = default_codec()
        self.now = T0
        self._offset = 0
        self.bus = MemoryBus()
        if provisioned:
            self.bus.admin().ensure_topics(
                [TopicSpec(topic, 1) for topic in self.topics.all_topics(["echo"])]
            )
        applier = Applier(
            playbooks=PlaybookRegistry.load([PLAYBOOKS]),
            outgoing=Outgoing(self.topics, self.codec),
            random=random.Random(7).random,
        )
        self.intake = Intake(
            engine=engine,
            applier=applier,
            publisher=OutboxPublisher(
                engine, self.bus.publisher("intake"), defer_removal=defer_removal
            ),
            clock=self.clock,
        )

    def clock(self) -> datetime:
        return self.now

    def delivery(self, event: Event, topic: str) -> Delivery:
        """The event as the consumer loop would hand it over: bytes, then decoded."""
        encoded = self.codec.encode(event)
        self._offset += 1
        record = ReceivedRecord(topic, 0, self._offset, encoded.key, encoded.value, encoded.headers)
        return Delivery(record, self.codec.decode(record.value, record.headers))

    def goal(self, goal_id: str, goal_type: str = "test.echo", **goal_input: Any) -> Delivery:
        event = Event(
            GoalSubmitted(type=goal_type, input=goal_input or {"text": "hi"}),
            source="tests",
            id=goal_id,
            traceparent=TRACEPARENT,
        )
        return self.delivery(event, self.topics.goals)

    def completed(self, workflow_id: str, attempt: int = 1) -> Delivery:
        payload = TaskCompleted(
            workflow_id=workflow_id,
            task_id=task_id(workflow_id, "echo"),
            step="echo",
            capability="echo",
            attempt=attempt,
            output={"text": "hi back"},
            confidence=0.9,
            reasoning=["echoed"],
            agent=AGENT,
        )
        return self.delivery(Event(payload, source="tests/agent"), self.topics.results)

    def failed(self, workflow_id: str, *, retryable: bool, attempt: int = 1) -> Delivery:
        payload = TaskFailed(
            workflow_id=workflow_id,
            task_id=task_id(workflow_id, "echo"),
            step="echo",
            capability="echo",
            attempt=attempt,
            error=ErrorInfo(type="Boom", message="it broke", retryable=retryable),
            agent=AGENT,
        )
        return self.delivery(Event(payload, source="tests/agent"), self.topics.results)

    def state(self, workflow_id: str) -> WorkflowState | None:
        with self.engine.connect() as conn:
            return workflow_rows.get(conn, workflow_id=workflow_id)

    def events(self, topic: str) -> list[Event]:
        """Every event published on a topic, decoded, in order."""
        return [self.codec.decode(r.value, r.headers) for r in self.bus.broker.records(topic)]

    def payloads(self, topic: str) -> list[Payload]:
        return [event.payload for event in self.events(topic)]

    def everything(self) -> dict[str, list[Event]]:
        """Every event published on any topic, by topic."""
        return {topic: self.events(topic) for topic in self.topics.all_topics(["echo"])}

    def outbox(self) -> list[tuple[str, Event]]:
        """Rows still in the outbox (not acknowledged by the broker), decoded."""
        with self.engine.connect() as conn:
            claimed = outbox.claim(conn, limit=1000, created_before=LATER)
        return [(r.topic, self.codec.decode(r.value, r.headers)) for _, r in claimed]

    def backlog(self) -> int:
        with self.engine.connect() as conn:
            return outbox.backlog(conn)

    def rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every workflow and task row, every column."""
        with self.engine.connect() as conn:
            return (
                [dict(r._mapping) for r in conn.execute(select(workflows).order_by("id"))],
                [dict(r._mapping) for r in conn.execute(select(tasks).order_by("id"))],
            )


@pytest.fixture
def harness(engine: Engine, namespace: str) -> Harness:
    return Harness(engine, namespace)


def test_a_goal_becomes_a_running_workflow_with_its_task_dispatched(harness: Harness) -> None:
    harness.intake.handle([harness.goal("goal-1", text="hello")])

    state = harness.state("goal-1")
    assert state is not None
    assert state.status is WorkflowStatus.RUNNING
    assert state.accepted_at == T0
    assert state.started_at == T0
    echo = state.tasks["echo"]
    assert echo.status is TaskStatus.DISPATCHED
    assert echo.attempt == 1
    assert echo.input == {"text": "hello"}  # absent goal fields are left out
    assert echo.lease_expires_at == T0 + timedelta(seconds=60)
    assert harness.payloads(harness.topics.tasks("echo")) == [
        TaskDispatched(
            workflow_id="goal-1",
            task_id=echo.id,
            step="echo",
            capability="echo",
            attempt=1,
            goal_type="test.echo",
            input={"text": "hello"},
            deadline=(T0 + timedelta(seconds=60)).isoformat(),
        )
    ]
    assert harness.payloads(harness.topics.workflow_events) == [
        WorkflowStarted(workflow_id="goal-1", type="test.echo", steps=["echo"])
    ]
    assert harness.outbox() == []  # acknowledged, so removed


def test_events_stay_in_the_outbox_when_the_broker_refuses_them(
    engine: Engine, namespace: str
) -> None:
    harness = Harness(engine, namespace, provisioned=False)

    harness.intake.handle([harness.goal("goal-1")])

    state = harness.state("goal-1")
    assert state is not None
    assert state.status is WorkflowStatus.RUNNING  # the state change is committed anyway
    queued = harness.outbox()
    assert [(topic, type(e.payload)) for topic, e in queued] == [
        (harness.topics.workflow_events, WorkflowStarted),
        (harness.topics.tasks("echo"), TaskDispatched),
    ]


def test_outgoing_events_continue_the_goal_trace(harness: Harness) -> None:
    harness.intake.handle([harness.goal("goal-1")])

    (dispatched,) = harness.events(harness.topics.tasks("echo"))
    (started,) = harness.events(harness.topics.workflow_events)
    # Tracing off: the workflow's own context, except that a dispatch names its own span
    # (derived from the dispatch id, so that its dead letter is the same bytes).
    assert started.traceparent == TRACEPARENT
    assert dispatched.traceparent is not None
    assert trace_id_of(dispatched.traceparent) == trace_id_of(TRACEPARENT)
    assert dispatched.traceparent == derived_traceparent(TRACEPARENT, dispatched.id)
    assert dispatched.task_id == task_id("goal-1", "echo")


def test_a_duplicate_goal_event_changes_nothing(harness: Harness) -> None:
    goal = harness.goal("goal-1")
    harness.intake.handle([goal])
    rows, published = harness.rows(), harness.everything()

    harness.now = T0 + timedelta(seconds=5)
    harness.intake.handle([goal])  # redelivered after a rebalance
    harness.intake.handle([harness.goal("goal-1", text="other input, same id")])

    assert harness.rows() == rows
    assert harness.everything() == published
    assert harness.outbox() == []


def test_the_same_goal_twice_in_one_batch_makes_one_workflow(harness: Harness) -> None:
    goal = harness.goal("goal-1")

    harness.intake.handle([goal, goal])

    workflow_list, task_list = harness.rows()
    assert [w["id"] for w in workflow_list] == ["goal-1"]
    assert len(task_list) == 1
    assert len(harness.events(harness.topics.tasks("echo"))) == 1
    assert len(harness.events(harness.topics.workflow_events)) == 1


def test_a_completed_task_completes_the_workflow(harness: Harness) -> None:
    harness.intake.handle([harness.goal("goal-1")])
    harness.now = T0 + timedelta(seconds=2)

    harness.intake.handle([harness.completed("goal-1")])

    state = harness.state("goal-1")
    assert state is not None
    assert state.status is WorkflowStatus.COMPLETED
    assert state.finished_at == harness.now
    assert state.tasks["echo"].status is TaskStatus.COMPLETED
    assert state.tasks["echo"].output == {"text": "hi back"}
    assert state.tasks["echo"].agent == AGENT.model_dump()
    assert harness.payloads(harness.topics.workflow_events)[-1] == WorkflowCompleted(
        workflow_id="goal-1",
        type="test.echo",
        output={"echo": {"text": "hi back"}},  # no output mapping: outputs by step
        duration_ms=2000.0,
    )
    assert len(harness.events(harness.topics.tasks("echo"))) == 1
    assert harness.outbox() == []


def test_a_duplicated_result_event_changes_nothing(harness: Harness) -> None:
    harness.intake.handle([harness.goal("goal-1")])
    result = harness.completed("goal-1")
    harness.now = T0 + timedelta(seconds=2)
    harness.intake.handle([result])
    rows, published = harness.rows(), harness.everything()

    # The very same record again (a consumer that crashed before committing its offset),
    # later, alone and in a batch with itself.
    harness.now = T0 + timedelta(seconds=30)
    harness.intake.handle([result])
    harness.intake.handle([result, result])

    assert harness.rows() == rows  # every column of every row, updated_at included
    assert harness.everything() == published  # not one more event
    assert harness.outbox() == []


def test_a_result_duplicated_within_one_batch_is_applied_once(harness: Harness) -> None:
    harness.intake.handle([harness.goal("goal-1")])
    result = harness.completed("goal-1")

    harness.intake.handle([result, result])

    completed = [
        p
        for p in harness.payloads(harness.topics.workflow_events)
        if isinstance(p, WorkflowCompleted)
    ]
    assert len(completed) == 1
    state = harness.state("goal-1")
    assert state is not None
    assert [a.outcome for a in state.tasks["echo"].attempts] == ["completed"]


def test_a_late_failure_after_completion_changes_nothing(harness: Harness) -> None:
    harness.intake.handle([harness.goal("goal-1")])
    harness.intake.handle([harness.completed("goal-1")])
    rows, published = harness.rows(), harness.everything()

    harness.intake.handle([harness.failed("goal-1", retryable=False)])

    assert harness.rows() == rows
    assert harness.everything() == published


def test_a_result_for_an_unknown_workflow_is_ignored(harness: Harness) -> None:
    harness.intake.handle([harness.completed("never-submitted")])
    harness.intake.handle([harness.failed("never-submitted", retryable=True)])

    assert harness.rows() == ([], [])
    assert all(events == [] for events in harness.everything().values())
    assert harness.outbox() == []


def test_a_batch_mixing_goals_and_results_applies_each(harness: Harness) -> None:
    harness.intake.handle([harness.goal("goal-1")])

    harness.intake.handle(
        [harness.goal("goal-2"), harness.completed("goal-1"), harness.completed("unknown")]
    )

    one, two = harness.state("goal-1"), harness.state("goal-2")
    assert one is not None
    assert one.status is WorkflowStatus.COMPLETED
    assert two is not None
    assert two.status is WorkflowStatus.RUNNING
    assert harness.state("unknown") is None


def test_a_retryable_failure_waits_for_a_retry(harness: Harness) -> None:
    harness.intake.handle([harness.goal("goal-1")])
    published = harness.everything()

    harness.intake.handle([harness.failed("goal-1", retryable=True)])

    state = harness.state("goal-1")
    assert state is not None
    assert state.status is WorkflowStatus.RUNNING
    echo = state.tasks["echo"]
    assert echo.status is TaskStatus.RETRY_WAIT
    assert echo.next_attempt_at is not None
    # The playbook's backoff: the first retry is 50-100 ms later.
    assert T0 + timedelta(milliseconds=50) <= echo.next_attempt_at
    assert echo.next_attempt_at <= T0 + timedelta(milliseconds=100)
    assert harness.everything() == published  # the retry is the reconciler's job


def test_a_non_retryable_failure_fails_the_workflow(harness: Harness) -> None:
    harness.intake.handle([harness.goal("goal-1")])

    harness.intake.handle([harness.failed("goal-1", retryable=False)])

    state = harness.state("goal-1")
    assert state is not None
    assert state.status is WorkflowStatus.FAILED
    assert state.failed_step == "echo"
    last = harness.payloads(harness.topics.workflow_events)[-1]
    assert isinstance(last, WorkflowFailed)
    assert last.step == "echo"
    assert last.error == ErrorInfo(type="Boom", message="it broke", retryable=False)
    assert "cannot be retried" in last.reason


def test_a_goal_of_an_unknown_type_fails_with_the_known_types(harness: Harness) -> None:
    harness.intake.handle([harness.goal("goal-1", goal_type="no.such.type")])

    state = harness.state("goal-1")
    assert state is not None
    assert state.status is WorkflowStatus.FAILED
    assert state.reason is not None
    assert "no.such.type" in state.reason
    assert "test.echo" in state.reason
    (failed,) = harness.payloads(harness.topics.workflow_events)
    assert isinstance(failed, WorkflowFailed)
    assert failed.reason == state.reason
    assert harness.events(harness.topics.tasks("echo")) == []


def test_an_event_the_orchestrator_does_not_consume_is_refused(harness: Harness) -> None:
    started = Event(
        WorkflowStarted(workflow_id="w", type="test.echo", steps=["echo"]), source="tests"
    )

    with pytest.raises(UnexpectedEvent, match="does not consume"):
        harness.intake.handle([harness.delivery(started, harness.topics.goals)])

    assert harness.rows() == ([], [])


def test_a_goal_accepted_over_http_is_planned_when_its_event_arrives(harness: Harness) -> None:
    with harness.engine.begin() as conn:
        accepted = goals.submit(
            conn,
            goal=goals.GoalSubmission("goal-1", "test.echo", {"text": "over http"}, TRACEPARENT),
            outgoing=Outgoing(harness.topics, harness.codec, source="waypost/http"),
            now=T0 - timedelta(seconds=1),
        )
    ((_, goal_record),) = accepted.outbox

    event = harness.codec.decode(goal_record.value, goal_record.headers)
    harness.intake.handle([harness.delivery(event, harness.topics.goals)])

    state = harness.state("goal-1")
    assert state is not None
    assert state.status is WorkflowStatus.RUNNING
    assert state.accepted_at == T0 - timedelta(seconds=1)  # as accepted over HTTP
    assert state.started_at == T0
    (dispatched,) = harness.payloads(harness.topics.tasks("echo"))
    assert isinstance(dispatched, TaskDispatched)
    assert dispatched.input == {"text": "over http"}


def test_deferred_removal_deletes_acknowledged_rows_in_the_next_transaction(
    engine: Engine, namespace: str
) -> None:
    harness = Harness(engine, namespace, defer_removal=True)

    harness.intake.handle([harness.goal("goal-1")])
    assert harness.backlog() == 2  # acknowledged, deleted with the next batch

    harness.intake.handle([harness.goal("goal-2")])
    assert harness.backlog() == 2  # goal-1's rows went; goal-2's wait

    harness.intake.idle()
    assert harness.backlog() == 0


def test_deferred_removals_are_not_lost_when_a_batch_fails(engine: Engine, namespace: str) -> None:
    harness = Harness(engine, namespace, defer_removal=True)
    harness.intake.handle([harness.goal("goal-1")])
    assert harness.backlog() == 2

    # A goal PostgreSQL cannot store (U+0000 in a jsonb string). The codec refuses such
    # bodies, so hand the intake the decoded event directly, as if one had slipped
    # through: encoding its task event fails inside the batch's transaction, which was
    # also deleting goal-1's acknowledged rows, and rolls it back.
    good = harness.goal("goal-2")
    poison = Event(
        GoalSubmitted(type="test.echo", input={"text": "nul \x00 inside"}),
        source="tests",
        id="goal-2",
    )
    with pytest.raises(InvalidEvent, match="cannot be stored"):
        harness.intake.handle([Delivery(good.record, poison)])
    harness.intake.idle()

    # goal-1's events were acknowledged long ago: their rows must go, or the relay
    # publishes them a second time after its grace period.
    assert harness.backlog() == 0
