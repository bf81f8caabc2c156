"""Getting outbox rows to the broker: publish-after-commit and the relay's sweep.

Publishing runs against the real broker (records are consumed back and decoded); the
cases where the broker refuses a record use the in-memory bus, whose publisher refuses
records for topics that do not exist at once instead of after librdkafka's 30 s timeout.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from orchestrator import goals
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.publishing.records import Outgoing
from orchestrator.service.relay import Relay
from orchestrator.store import outbox
from tests.waiting import wait_for
from waypost.bus.base import Publisher, Subscriber, TopicSpec
from waypost.bus.kafka import KafkaBus
from waypost.bus.memory import MemoryBus
from waypost.bus.records import OutgoingRecord, ReceivedRecord
from waypost.events import Event, GoalSubmitted, default_codec, utcnow
from waypost.settings import OrchestratorSettings
from waypost.stack.broker import EmbeddedBroker
from waypost.topics import Topics

pytestmark = pytest.mark.integration

TRACEPARENT = "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01"


def in_a_minute() -> datetime:
    """A clock a minute ahead: every row already waited out the grace period."""
    return utcnow() + timedelta(minutes=1)


def submit(engine: Engine, outgoing: Outgoing, goal_id: str) -> goals.Accepted:
    """Accept a goal the way the HTTP API does, without publishing it."""
    with engine.begin() as conn:
        return goals.submit(
            conn,
            goal=goals.GoalSubmission(
                goal_id=goal_id,
                type="test.echo",
                input={"text": goal_id},
                traceparent=TRACEPARENT,
            ),
            outgoing=outgoing,
            now=utcnow(),
        )


def backlog(engine: Engine) -> int:
    with engine.connect() as conn:
        return outbox.backlog(conn)


def enqueue(engine: Engine, records: list[OutgoingRecord]) -> list[int]:
    with engine.begin() as conn:
        return outbox.enqueue(conn, records=records)


@pytest.fixture
def topics(namespace: str) -> Topics:
    return Topics(namespace)


@pytest.fixture
def kafka(broker: EmbeddedBroker, make_settings: Callable[..., Any], topics: Topics) -> KafkaBus:
    """The real broker, with this test's topics provisioned."""
    settings = make_settings(OrchestratorSettings, topic_partitions=2)
    bus = KafkaBus(broker.bootstrap, settings)
    bus.admin().ensure_topics(topics.specs(["echo"], settings))
    return bus


@pytest.fixture
def kafka_publisher(kafka: KafkaBus) -> Iterator[Publisher]:
    publisher = kafka.publisher(f"relay-test-{uuid.uuid4().hex[:6]}")
    yield publisher
    publisher.close()


@pytest.fixture
def consumer(kafka: KafkaBus, topics: Topics) -> Iterator[Subscriber]:
    """A member of a fresh group reading the goals topic from the beginning."""
    subscriber = kafka.subscriber(f"{topics.namespace}.check", [topics.goals], "check")
    yield subscriber
    subscriber.close()


def consume(subscriber: Subscriber, count: int) -> list[ReceivedRecord]:
    """Exactly ``count`` records (polling until they arrived, then briefly for extras)."""
    received: list[ReceivedRecord] = []

    def enough() -> bool:
        received.extend(subscriber.poll(100, 0.2))
        return len(received) >= count

    wait_for(enough, timeout=20, interval=0, what=f"{count} record(s) on the broker")
    received.extend(subscriber.poll(100, 0.3))
    return received


def test_relay_publishes_rows_left_in_the_outbox_and_deletes_them(
    engine: Engine,
    topics: Topics,
    kafka_publisher: Publisher,
    consumer: Subscriber,
) -> None:
    codec = default_codec()
    outgoing = Outgoing(topics, codec, source="waypost/http")
    # Two writers that committed and then died before publishing.
    submit(engine, outgoing, "goal-1")
    submit(engine, outgoing, "goal-2")
    relay = Relay(engine=engine, publisher=kafka_publisher, clock=in_a_minute, grace_s=5)

    assert relay.publish_once() == (2, 0)

    assert backlog(engine) == 0
    assert relay.published == 2
    events = [codec.decode(r.value, r.headers) for r in consume(consumer, 2)]
    assert sorted(e.id for e in events) == ["goal-1", "goal-2"]
    assert {e.source for e in events} == {"waypost/http"}
    assert {e.traceparent for e in events} == {TRACEPARENT}
    assert [e.payload for e in sorted(events, key=lambda e: e.id)] == [
        GoalSubmitted(type="test.echo", input={"text": "goal-1"}),
        GoalSubmitted(type="test.echo", input={"text": "goal-2"}),
    ]
    assert relay.publish_once() == (0, 0)  # nothing left to sweep


def test_relay_leaves_rows_younger_than_the_grace_period(
    engine: Engine, topics: Topics, kafka_publisher: Publisher
) -> None:
    # Their writer is probably publishing them right now.
    submit(engine, Outgoing(topics, default_codec()), "goal-1")
    relay = Relay(engine=engine, publisher=kafka_publisher, clock=utcnow, grace_s=60)

    assert relay.publish_once() == (0, 0)
    assert backlog(engine) == 1


def test_publish_after_commit_sends_the_rows_and_deletes_them(
    engine: Engine, topics: Topics, kafka_publisher: Publisher, consumer: Subscriber
) -> None:
    codec = default_codec()
    accepted = submit(engine, Outgoing(topics, codec), "goal-1")
    assert accepted.created
    assert backlog(engine) == 1

    outcome = OutboxPublisher(engine, kafka_publisher).publish(accepted.outbox)

    assert outcome.delivered == [0]
    assert backlog(engine) == 0
    (record,) = consume(consumer, 1)
    assert record.key == b"goal-1"
    assert codec.decode(record.value, record.headers).id == "goal-1"


def test_a_repeated_goal_has_nothing_to_publish(engine: Engine, topics: Topics) -> None:
    outgoing = Outgoing(topics, default_codec())
    submit(engine, outgoing, "goal-1")

    again = submit(engine, outgoing, "goal-1")

    assert not again.created
    assert list(again.outbox) == []
    assert OutboxPublisher(engine, MemoryBus().publisher("x")).publish(again.outbox).delivered == []
    assert backlog(engine) == 1


def test_a_record_for_a_missing_topic_stays_in_the_outbox(engine: Engine) -> None:
    bus = MemoryBus()
    bus.admin().ensure_topics([TopicSpec("ns.present", 1)])
    ids = enqueue(
        engine,
        [
            OutgoingRecord("ns.present", b"k1", b"v1"),
            OutgoingRecord("ns.absent", b"k2", b"v2"),
            OutgoingRecord("ns.present", b"k3", b"v3"),
        ],
    )
    relay = Relay(engine=engine, publisher=bus.publisher("relay"), clock=in_a_minute)

    assert relay.publish_once() == (2, 1)

    with engine.begin() as conn:
        left = outbox.claim(conn, limit=10, created_before=in_a_minute())
    assert left == [(ids[1], OutgoingRecord("ns.absent", b"k2", b"v2"))]
    assert [r.value for r in bus.broker.records("ns.present")] == [b"v1", b"v3"]

    # Once the topic exists (the reconciler re-creates missing topics), it goes out.
    bus.admin().ensure_topics([TopicSpec("ns.absent", 1)])
    assert relay.publish_once() == (1, 0)
    assert backlog(engine) == 0
    assert [r.value for r in bus.broker.records("ns.absent")] == [b"v2"]
    assert relay.published == 3


def test_publish_after_commit_keeps_refused_rows_for_the_relay(engine: Engine) -> None:
    bus = MemoryBus()
    bus.admin().ensure_topics([TopicSpec("ns.present", 1)])
    records = [
        OutgoingRecord("ns.absent", b"k1", b"v1"),
        OutgoingRecord("ns.present", b"k2", b"v2"),
    ]
    ids = enqueue(engine, records)

    outcome = OutboxPublisher(engine, bus.publisher("writer")).publish(
        list(zip(ids, records, strict=True))
    )

    assert outcome.delivered == [1]
    assert list(outcome.failed) == [0]
    with engine.begin() as conn:
        assert outbox.claim(conn, limit=10, created_before=in_a_minute()) == [(ids[0], records[0])]


def test_relay_run_sweeps_until_stopped(engine: Engine) -> None:
    bus = MemoryBus()
    bus.admin().ensure_topics([TopicSpec("ns.t", 1)])
    relay = Relay(
        engine=engine,
        publisher=bus.publisher("relay"),
        clock=in_a_minute,
        batch_size=2,  # several batches in a row
        poll_interval_s=0.05,
    )
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    try:
        enqueue(engine, [OutgoingRecord("ns.t", None, str(n).encode()) for n in range(5)])
        wait_for(lambda: backlog(engine) == 0, timeout=10, what="the outbox to drain")
        enqueue(engine, [OutgoingRecord("ns.t", None, b"later")])
        wait_for(lambda: backlog(engine) == 0, timeout=10, what="the late row to go out")
    finally:
        stop.set()
        thread.join(timeout=5)

    assert not thread.is_alive()
    assert [r.value for r in bus.broker.records("ns.t")] == [
        b"0",
        b"1",
        b"2",
        b"3",
        b"4",
        b"later",
    ]


def test_published_events_decode_to_what_was_queued(
    engine: Engine, topics: Topics, kafka_publisher: Publisher, consumer: Subscriber
) -> None:
    codec = default_codec()
    event = Event(
        GoalSubmitted(type="test.echo", input={"text": "ünïcode", "n": [1, 2.5, None, True]}),
        source="tests",
        id="goal-x",
        traceparent=TRACEPARENT,
        tracestate="vendor=abc",
    )
    encoded = codec.encode(event)
    enqueue(engine, [OutgoingRecord(topics.goals, encoded.key, encoded.value, encoded.headers)])

    relay = Relay(engine=engine, publisher=kafka_publisher, clock=in_a_minute)
    assert relay.publish_once() == (1, 0)

    (record,) = consume(consumer, 1)
    assert record.headers == encoded.headers
    assert codec.decode(record.value, record.headers) == event
