"""The reconciler's timers on the real PostgreSQL, driven by a clock the test moves; its
topic provisioning on the real broker.

Events go out through the in-memory bus (our fake of the broker interface), so each test
reads back exactly what the reconciler published.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from orchestrator import goals
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.publishing.records import Outgoing
from orchestrator.service.applier import Applier
from orchestrator.service.intake import Intake
from orchestrator.service.reconciler import Reconciler
from orchestrator.store import outbox
from orchestrator.store import workflows as workflow_rows
from orchestrator.workflow.state import TaskStatus, WorkflowState, WorkflowStatus
from tests.waiting import wait_for
from waypost.bus.base import Admin, TopicSpec
from waypost.bus.kafka import KafkaBus
from waypost.bus.loop import Delivery
from waypost.bus.memory import MemoryBus
from waypost.bus.records import ReceivedRecord
from waypost.events import (
    Event,
    GoalSubmitted,
    Payload,
    TaskDispatched,
    WorkflowFailed,
    default_codec,
)
from waypost.settings import OrchestratorSettings
from waypost.stack.broker import EmbeddedBroker
from waypost.topics import Topics

pytestmark = pytest.mark.integration

PLAYBOOKS = Path(__file__).resolve().parents[2] / "support" / "playbooks"
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)  # the echo step's timeout
RETRY = timedelta(milliseconds=500)  # the echo step's longest backoff: any retry is due
REPLAN_AFTER_S = 30.0


class Harness:
    """Intake and reconciler sharing one applier and publisher, on a test clock."""

    def __init__(self, engine: Engine, namespace: str, admin: Admin | None = None) -> None:
        self.engine = engine
        self.topics = Topics(namespace)
        self.codec = default_codec()
        self.now = T0
        self.bus = MemoryBus()
        self.specs = [TopicSpec(t, 1) for t in self.topics.all_topics(["echo"])]
        self.bus.admin().ensure_topics(self.specs)
        self.outgoing = Outgoing(self.topics, self.codec)
        applier = Applier(
            playbooks=PlaybookRegistry.load([PLAYBOOKS]),
            outgoing=self.outgoing,
            random=random.Random(7).random,
        )
        publisher = OutboxPublisher(engine, self.bus.publisher("orchestrator"))
        self.intake = Intake(engine=engine, applier=applier, publisher=publisher, clock=self.clock)
        self.reconciler = Reconciler(
            engine=engine,
            applier=applier,
            admin=admin or self.bus.admin(),
            topic_specs=self.specs,
            publisher=publisher,
            clock=self.clock,
            interval_s=0.02,
            replan_after_s=REPLAN_AFTER_S,
        )

    def clock(self) -> datetime:
        return self.now

    def goal_event(self, goal_id: str) -> Delivery:
        event = Event(GoalSubmitted(type="test.echo", input={"text": "hi"}), "tests", id=goal_id)
        encoded = self.codec.encode(event)
        record = ReceivedRecord(
            self.topics.goals, 0, 0, encoded.key, encoded.value, encoded.headers
        )
        return Delivery(record, self.codec.decode(record.value, record.headers))

    def submit_over_http(self, goal_id: str) -> None:
        """A goal accepted over HTTP whose goal.submitted event the broker then lost."""
        with self.engine.begin() as conn:
            goals.submit(
                conn,
                goal=goals.GoalSubmission(goal_id, "test.echo", {"text": "hi"}, None),
                outgoing=self.outgoing,
                now=self.now,
            )
            outbox_rows = outbox.claim(conn, limit=10, created_before=T0 + timedelta(days=1))
            outbox.remove(conn, ids=[row_id for row_id, _ in outbox_rows])

    def state(self, workflow_id: str) -> WorkflowState:
        with self.engine.connect() as conn:
            state = workflow_rows.get(conn, workflow_id=workflow_id)
        assert state is not None
        return state

    def payloads(self, topic: str) -> list[Payload]:
        return [
            self.codec.decode(r.value, r.headers).payload for r in self.bus.broker.records(topic)
        ]

    def dispatched(self) -> list[TaskDispatched]:
        found = self.payloads(self.topics.tasks("echo"))
        dispatched = [p for p in found if isinstance(p, TaskDispatched)]
        assert dispatched == found  # nothing else on a task topic
        return dispatched

    def backlog(self) -> int:
        with self.engine.connect() as conn:
            return outbox.backlog(conn)

    def tick_at(self, moment: datetime) -> int:
        """Run one reconciler tick at ``moment``; how many inputs it applied."""
        self.now = moment
        return self.reconciler.tick().applied


@pytest.fixture
def harness(engine: Engine, namespace: str) -> Harness:
    return Harness(engine, namespace)


def test_nothing_is_due_before_the_lease_expires(harness: Harness) -> None:
    harness.intake.handle([harness.goal_event("goal-1")])

    assert harness.tick_at(T0 + LEASE - timedelta(microseconds=1)) == 0

    assert harness.state("goal-1").tasks["echo"].status is TaskStatus.DISPATCHED
    assert len(harness.dispatched()) == 1


def test_an_expired_lease_gets_a_new_attempt_dispatched(harness: Harness) -> None:
    harness.intake.handle([harness.goal_event("goal-1")])

    assert harness.tick_at(T0 + LEASE) == 1  # the lease ran out: attempt 1 failed

    echo = harness.state("goal-1").tasks["echo"]
    assert echo.status is TaskStatus.RETRY_WAIT
    assert echo.attempts[0].outcome == "lease_expired"
    assert len(harness.dispatched()) == 1  # no new attempt before its backoff passed

    retry_at = T0 + LEASE + RETRY
    assert harness.tick_at(retry_at) == 1

    first, second = harness.dispatched()
    assert (first.attempt, second.attempt) == (1, 2)
    assert second.task_id == first.task_id
    assert second.input == first.input
    assert second.deadline == (retry_at + LEASE).isoformat()
    echo = harness.state("goal-1").tasks["echo"]
    assert (echo.status, echo.attempt) == (TaskStatus.DISPATCHED, 2)
    assert harness.backlog() == 0  # published and removed
    assert harness.tick_at(retry_at) == 0  # nothing more is due


def test_after_its_retries_the_workflow_fails_with_a_reason(harness: Harness) -> None:
    harness.intake.handle([harness.goal_event("goal-1")])
    moment = T0
    for _ in range(3):  # the echo step allows 1 + 2 retries
        moment += LEASE
        assert harness.tick_at(moment) == 1  # lease expired
        moment += RETRY
        harness.tick_at(moment)  # retry due (nothing after the last attempt)

    state = harness.state("goal-1")
    assert state.status is WorkflowStatus.FAILED
    assert state.failed_step == "echo"
    assert state.reason is not None
    assert state.reason.startswith(
        "step 'echo' failed after 3 attempt(s): LeaseExpired: no result within 60 s of dispatch; "
        f"dead-lettered to {harness.topics.tasks('echo')}.dlq as event "
    )
    assert [a.outcome for a in state.tasks["echo"].attempts] == ["lease_expired"] * 3
    assert [d.attempt for d in harness.dispatched()] == [1, 2, 3]
    # The last dispatch, exactly as published, went to the task topic's dead-letter topic.
    last = harness.bus.broker.records(harness.topics.tasks("echo"))[-1]
    (dead,) = harness.bus.broker.records(harness.topics.tasks("echo") + ".dlq")
    assert (dead.key, dead.value, dead.headers[: len(last.headers)]) == (
        last.key,
        last.value,
        last.headers,
    )
    assert state.dead_letter is not None
    assert state.dead_letter.event_id == (last.header("ce_id") or b"").decode()
    (failed,) = [
        p for p in harness.payloads(harness.topics.workflow_events) if isinstance(p, WorkflowFailed)
    ]
    assert failed.reason == state.reason
    assert failed.step == "echo"
    assert failed.error is not None
    assert failed.error.type == "LeaseExpired"
    assert harness.tick_at(moment + timedelta(hours=1)) == 0  # finished: no more timers


def test_an_accepted_goal_nobody_planned_is_planned(harness: Harness) -> None:
    harness.submit_over_http("goal-1")

    assert harness.tick_at(T0 + timedelta(seconds=REPLAN_AFTER_S - 1)) == 0
    assert harness.state("goal-1").status is WorkflowStatus.ACCEPTED

    planned_at = T0 + timedelta(seconds=REPLAN_AFTER_S)
    assert harness.tick_at(planned_at) == 1

    state = harness.state("goal-1")
    assert state.status is WorkflowStatus.RUNNING
    assert state.started_at == planned_at
    (dispatched,) = harness.dispatched()
    assert dispatched.workflow_id == "goal-1"
    assert dispatched.attempt == 1


def test_the_lost_goal_event_arriving_after_replanning_changes_nothing(
    harness: Harness,
) -> None:
    harness.submit_over_http("goal-1")
    harness.tick_at(T0 + timedelta(seconds=REPLAN_AFTER_S))
    before = harness.state("goal-1")

    harness.intake.handle([harness.goal_event("goal-1")])

    assert harness.state("goal-1") == before
    assert len(harness.dispatched()) == 1


def test_stale_goals_are_planned_a_batch_at_a_time(harness: Harness) -> None:
    harness.reconciler.batch_size = 1
    harness.submit_over_http("goal-1")
    harness.submit_over_http("goal-2")
    later = T0 + timedelta(seconds=REPLAN_AFTER_S)

    assert [harness.tick_at(later), harness.tick_at(later), harness.tick_at(later)] == [1, 1, 0]

    assert {d.workflow_id for d in harness.dispatched()} == {"goal-1", "goal-2"}


def test_run_provisions_topics_and_handles_timers_until_stopped(
    engine: Engine, namespace: str
) -> None:
    admin_bus = MemoryBus()  # starts without topics
    harness = Harness(engine, namespace, admin=admin_bus.admin())
    harness.submit_over_http("goal-1")
    harness.now = T0 + timedelta(hours=1)
    stop = threading.Event()
    thread = threading.Thread(target=harness.reconciler.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: harness.state("goal-1").status is WorkflowStatus.RUNNING,
            timeout=10,
            what="the stale goal to be planned",
        )
    finally:
        stop.set()
        thread.join(timeout=5)

    assert not thread.is_alive()
    assert admin_bus.admin().list_topics() == {spec.name: 1 for spec in harness.specs}


def test_ensure_topics_creates_missing_topics_on_the_broker(
    engine: Engine,
    namespace: str,
    broker: EmbeddedBroker,
    make_settings: Callable[..., Any],
) -> None:
    settings = make_settings(OrchestratorSettings, topic_partitions=3)
    admin = KafkaBus(broker.bootstrap, settings).admin()
    topics = Topics(namespace)
    specs = topics.specs(["echo"], settings)
    admin.ensure_topics([TopicSpec(topics.goals, 1)])  # one survived, the rest were lost
    harness = Harness(engine, namespace, admin=admin)
    harness.reconciler.topic_specs = specs

    harness.reconciler.ensure_topics()

    ours = {n: p for n, p in admin.list_topics().items() if n.startswith(namespace + ".")}
    assert ours == {spec.name: (1 if spec.name == topics.goals else 3) for spec in specs}
    assert admin.ensure_topics(specs) == []  # all there now


def test_a_lease_is_extended_while_the_dispatch_still_waits_in_the_outbox(
    engine: Engine, namespace: str
) -> None:
    harness = Harness(engine, namespace)
    # A broker that refuses the task topic (down, or restarted without it): the dispatch
    # stays in the outbox, no agent can have the task.
    del harness.bus.broker.topics[harness.topics.tasks("echo")]
    harness.intake.handle([harness.goal_event("goal-1")])
    assert harness.backlog() >= 1

    assert harness.tick_at(T0 + LEASE) == 1

    echo = harness.state("goal-1").tasks["echo"]
    assert (echo.status, echo.attempt) == (TaskStatus.DISPATCHED, 1)
    assert echo.lease_expires_at == T0 + LEASE + LEASE
    assert [a.outcome for a in echo.attempts] == [None]  # no attempt used up

    # Delivered now (the relay would do this); the next expiry is a real failed attempt.
    with harness.engine.begin() as conn:
        waiting = outbox.claim(conn, limit=10, created_before=T0 + timedelta(days=1))
        outbox.remove(conn, ids=[row_id for row_id, _ in waiting])
    assert harness.tick_at(T0 + LEASE + LEASE) == 1

    echo = harness.state("goal-1").tasks["echo"]
    assert echo.status is TaskStatus.RETRY_WAIT
    assert [a.outcome for a in echo.attempts] == ["lease_expired"]
