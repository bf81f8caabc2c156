"""The dead-letter index and replays on the real broker and PostgreSQL: the indexer
mirrors ``*.dlq`` topics byte for byte (and stores nothing twice), replays send the
original record with replay headers, each dead letter at most once (also when two
requests race), a retried request sends nothing again, edits are schema-checked before
anything is sent, and the loop guard stops a message that keeps failing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine, func, select

from orchestrator.dead_letters.edits import Edit, HeaderEdit
from orchestrator.dead_letters.filters import parse_filter
from orchestrator.dead_letters.indexer import consumer
from orchestrator.dead_letters.orders import ReplayOrder
from orchestrator.dead_letters.records import REPLAY_COUNT, REPLAY_OF, REPLAY_REQUEST
from orchestrator.dead_letters.replay import Replayer
from orchestrator.errors import ReplayConflict, ReplayError
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.store import audit
from orchestrator.store import dead_letters as index
from orchestrator.store import replays as replay_rows
from orchestrator.store.dead_letters import DeadLetterFilter
from orchestrator.store.tables import outbox
from tests.waiting import wait_for
from waypost.bus.dead_letters import Failure, dead_letter
from waypost.bus.kafka import KafkaBus
from waypost.bus.records import OutgoingRecord, ReceivedRecord
from waypost.errors import UndecodableEvent
from waypost.events import Event, GoalSubmitted, default_codec, utcnow
from waypost.settings import IndexerSettings
from waypost.telemetry import NO_TRACING, Tracing
from waypost.topics import Topics

pytestmark = pytest.mark.integration
BINARY = b"\x00\xff\xfe binary"


@dataclass
class World:
    engine: Engine
    bus: KafkaBus
    topics: Topics
    replayer: Replayer
    indexed: Callable[[int], None]

    def dead_letter(self, record: OutgoingRecord, error: Exception, attempts: int = 3) -> None:
        """Publish ``record``'s dead letter, as a consumer that gave up on it would."""
        received = ReceivedRecord(record.topic, 1, 41, record.key, record.value, record.headers)
        now = utcnow()
        failed = dead_letter(received, Failure(error, attempts, now, now), group="g.test")
        publisher = self.bus.publisher("test")
        publisher.send([failed]).raise_for_failures()
        publisher.close()

    def read(self, topic: str, count: int) -> list[ReceivedRecord]:
        subscriber = self.bus.subscriber(f"reader-{uuid.uuid4().hex[:6]}", [topic], "reader")
        found: list[ReceivedRecord] = []
        try:

            def enough() -> bool:
                found.extend(subscriber.poll(100, 0.2))
                return len(found) >= count

            wait_for(enough, timeout=20, what=f"{count} record(s) on {topic}")
            found.extend(subscriber.poll(100, 0.3))
        finally:
            subscriber.close()
        return found


def goal(text: str) -> OutgoingRecord:
    """A valid goal.submitted record with a binary header a foreign client added."""
    encoded = default_codec().encode(
        Event(GoalSubmitted(type="test.echo", input={"text": text}), source="test")
    )
    return OutgoingRecord("", encoded.key, encoded.value, (*encoded.headers, ("trace-bin", BINARY)))


@contextmanager
def running_world(
    broker: Any,
    engine: Engine,
    namespace: str,
    make_settings: Callable[..., Any],
    tracing: Tracing = NO_TRACING,
) -> Iterator[World]:
    """An indexer running in a thread, and a replayer, on this test's topics."""
    settings = make_settings(IndexerSettings)
    bus = KafkaBus(broker.bootstrap, settings)
    topics = Topics(namespace)
    bus.admin().ensure_topics(topics.specs(["echo"], settings))
    stop = threading.Event()
    loop = consumer(settings, bus=bus, engine=engine, stop=stop, tracing=tracing)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    replayer = Replayer(
        engine=engine,
        codec=default_codec(),
        namespace=namespace,
        admin=bus.admin(),
        publisher=OutboxPublisher(engine, bus.publisher("replay")),
        clock=utcnow,
        max_replays=2,
        tracing=tracing,
    )

    def indexed(count: int) -> None:
        def enough() -> bool:
            with engine.connect() as conn:
                return index.count(conn, DeadLetterFilter(status=None), namespace) >= count

        wait_for(enough, timeout=30, what=f"{count} dead letter(s) indexed")

    try:
        yield World(engine, bus, topics, replayer, indexed)
    finally:
        stop.set()
        thread.join(15)


@pytest.fixture
def world(
    broker: Any, engine: Engine, namespace: str, make_settings: Callable[..., Any]
) -> Iterator[World]:
    with running_world(broker, engine, namespace, make_settings) as running:
        yield running


def letters(world: World, **filters: Any) -> list[index.DeadLetter]:
    with world.engine.connect() as conn:
        found = index.search(
            conn,
            filters=DeadLetterFilter(**{"status": None, **filters}),
            namespace=world.topics.namespace,
            newest_first=False,
        )
    return found.rows


def order(world: World, **fields: Any) -> ReplayOrder:
    values: dict[str, Any] = {
        "request_id": uuid.uuid4().hex,
        "actor": "ann",
        "filters": DeadLetterFilter(),
        "rate": None,
        **fields,
    }
    return ReplayOrder(**values)


def test_the_indexer_stores_each_dead_letter_once_byte_for_byte(world: World) -> None:
    record = goal("first")
    source = world.topics.goals
    world.dead_letter(
        OutgoingRecord(source, record.key, record.value, record.headers), KeyError("x")
    )
    world.dead_letter(
        OutgoingRecord(source, record.key, record.value, record.headers), KeyError("x")
    )
    on_topic = world.read(world.topics.dlq(source), 2)
    world.indexed(2)

    stored = letters(world)
    # Two failures of one record are two dead letters (their failure times differ);
    # reading the topic again stores nothing more.
    assert len(stored) == 2
    first = stored[0]
    assert (first.key, first.value) == (record.key, record.value)
    assert first.headers == on_topic[0].headers
    assert first.headers[: len(record.headers)] == record.headers  # the binary one too
    assert (first.source_topic, first.source_partition, first.source_offset) == (source, 1, 41)
    assert (first.error_class, first.error_message, first.attempts) == ("KeyError", "'x'", 3)
    assert first.consumer_group == "g.test"
    assert first.event_type == "waypost.goal.submitted"
    assert first.payload == orjson.loads(record.value or b"")
    assert first.status == "pending"
    with world.engine.begin() as conn:
        rows = [dict(r) for r in conn.execute(select(index.dead_letters)).mappings()]
        again = index.index(conn, rows=[_row(r) for r in rows])
    assert again == 0


def test_a_replay_sends_the_original_record_with_replay_headers_once(world: World) -> None:
    record = goal("replay me")
    world.dead_letter(
        OutgoingRecord(world.topics.goals, record.key, record.value, record.headers),
        RuntimeError("database was down"),
    )
    world.indexed(1)
    (letter,) = letters(world)

    ask = order(world, filters=DeadLetterFilter(ids=(letter.id,)))
    state, new = world.replayer.submit(ask)
    assert (new, state.total) == (True, 1)
    done = world.replayer.run(ask.request_id)
    again, new_again = world.replayer.submit(ask)  # the client retries the same request
    world.replayer.run(ask.request_id)

    assert (done.state, done.counts["sent"]) == ("done", 1)
    assert (new_again, again.counts["sent"]) == (False, 1)
    (sent,) = world.read(world.topics.goals, 1)
    assert (sent.key, sent.value) == (record.key, record.value)
    assert sent.headers == (
        *record.headers,
        (REPLAY_OF, str(letter.id).encode()),
        (REPLAY_COUNT, b"1"),
        (REPLAY_REQUEST, ask.request_id.encode()),
    )
    (replayed,) = letters(world)
    assert (replayed.status, replayed.status_by, replayed.replay_request_id) == (
        "replayed",
        "ann",
        ask.request_id,
    )
    with world.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 0
        actions = [e.action for e in audit.recent(conn, actions=["dlq.replay"])]
    assert actions == ["dlq.replay"]  # the retried request added no audit row either

    # The same request id with another selection is refused, not merged.
    with pytest.raises(ReplayConflict):
        world.replayer.submit(order(world, request_id=ask.request_id, force=True))


def test_two_requests_racing_for_one_dead_letter_send_it_once(world: World) -> None:
    record = goal("race")
    world.dead_letter(
        OutgoingRecord(world.topics.goals, record.key, record.value, record.headers), OSError("x")
    )
    world.indexed(1)
    (letter,) = letters(world)
    orders = [order(world, filters=DeadLetterFilter(ids=(letter.id,))) for _ in range(8)]
    for ask in orders:
        world.replayer.submit(ask)

    with ThreadPoolExecutor(8) as pool:
        states = list(pool.map(lambda ask: world.replayer.run(ask.request_id), orders))

    assert sorted(s.counts["sent"] for s in states) == [0] * 7 + [1]
    assert sorted(s.counts["noop"] for s in states) == [0] + [1] * 7
    winner = next(s for s in states if s.counts["sent"])
    assert len(world.read(world.topics.goals, 1)) == 1
    with world.engine.connect() as conn:
        entries = replay_rows.replays_of(conn, dead_letter_id=letter.id)
    assert sorted(e.outcome for e in entries) == ["noop"] * 7 + ["sent"]
    assert {e.detail for e in entries if e.outcome == "noop"} == {
        f"already replayed by ann (request {winner.id})"
    }


def test_edits_are_checked_against_the_schema_before_anything_is_sent(world: World) -> None:
    record = goal("bad")
    world.dead_letter(
        OutgoingRecord(world.topics.goals, record.key, record.value, record.headers), ValueError()
    )
    world.indexed(1)
    (letter,) = letters(world)
    ids = DeadLetterFilter(ids=(letter.id,))

    broken = order(world, filters=ids, edit=Edit("merge_patch", {"input": None, "type": 7}))
    preview = world.replayer.dry_run(broken)
    assert preview.counts == {"invalid": 1}
    assert "InvalidEvent" in (preview.previews[0].detail or "")
    world.replayer.submit(broken)
    refused = world.replayer.run(broken.request_id)
    assert (refused.counts["invalid"], refused.counts["sent"]) == (1, 0)
    assert letters(world)[0].status == "pending"  # nothing sent, still to be fixed

    fixed = order(world, filters=ids, edit=Edit("merge_patch", {"input": {"text": "good"}}))
    assert world.replayer.dry_run(fixed).counts == {"sent": 1}
    world.replayer.submit(fixed)
    assert world.replayer.run(fixed.request_id).counts["sent"] == 1
    (sent,) = world.read(world.topics.goals, 1)
    assert orjson.loads(sent.value or b"")["input"] == {"text": "good"}


def test_broken_headers_are_repaired_by_a_header_edit_checked_and_audited(
    world: World,
) -> None:
    record = goal("misaddressed")
    broken = (
        *(
            (name, b"waypost.goal.submited" if name == "ce_type" else value)
            for name, value in record.headers
            if name != "ce_specversion"
        ),
        ("x-debug", b"drop me"),
    )
    world.dead_letter(
        OutgoingRecord(world.topics.goals, record.key, record.value, broken),
        UndecodableEvent("missing header(s) ce_specversion"),
    )
    world.indexed(1)
    (letter,) = letters(world)
    ids = DeadLetterFilter(ids=(letter.id,))

    as_it_is = world.replayer.dry_run(order(world, filters=ids))
    assert as_it_is.counts == {"invalid": 1}
    assert "ce_specversion" in (as_it_is.previews[0].detail or "")
    half = order(world, filters=ids, header_edit=HeaderEdit.parse({"ce_specversion": "1.0"}))
    assert "unknown ce_type 'waypost.goal.submited'" in (
        world.replayer.dry_run(half).previews[0].detail or ""
    )

    repair = HeaderEdit.parse(
        {"ce_specversion": "1.0", "ce_type": "waypost.goal.submitted", "x-debug": None}
    )
    fixed = order(world, filters=ids, header_edit=repair)
    assert world.replayer.dry_run(fixed).counts == {"sent": 1}
    world.replayer.submit(fixed)
    # Run as a restarted app would: the order read back from the stored request.
    assert world.replayer.run(fixed.request_id).counts["sent"] == 1

    (sent,) = world.read(world.topics.goals, 1)
    assert sent.value == record.value
    assert [h for h in sent.headers if not h[0].startswith("waypost-replay-")] == [
        *(h for h in record.headers if h[0] != "ce_specversion"),
        ("ce_specversion", b"1.0"),
    ]
    assert default_codec().decode(sent.value, sent.headers).payload.input == {  # type: ignore[attr-defined]
        "text": "misaddressed"
    }
    with world.engine.connect() as conn:
        (entry,) = audit.recent(conn, actions=["dlq.replay"])
        stored = replay_rows.get(conn, request_id=fixed.request_id)
    assert entry.detail["edit"] == {"headers": repair.as_json()}
    assert stored is not None
    assert stored.edit == {"headers": repair.as_json()}


def test_the_loop_guard_refuses_a_message_replayed_too_often_unless_forced(
    world: World,
) -> None:
    record = goal("again and again")
    headers = (*record.headers, (REPLAY_OF, b"1"), (REPLAY_COUNT, b"2"))
    world.dead_letter(
        OutgoingRecord(world.topics.goals, record.key, record.value, headers), OSError()
    )
    world.indexed(1)
    (letter,) = letters(world)
    assert letter.replay_count == 2

    ask = order(world, filters=DeadLetterFilter(ids=(letter.id,)))
    world.replayer.submit(ask)
    refused = world.replayer.run(ask.request_id)
    forced = order(world, filters=DeadLetterFilter(ids=(letter.id,)), force=True)
    world.replayer.submit(forced)
    sent = world.replayer.run(forced.request_id)

    assert refused.counts["refused"] == 1
    assert sent.counts["sent"] == 1
    (replayed,) = world.read(world.topics.goals, 1)
    assert (REPLAY_COUNT, b"3") in replayed.headers


def test_a_filter_replays_to_another_topic_and_a_foreign_missing_topic_is_refused(
    world: World,
) -> None:
    for n in range(3):
        record = goal(f"bulk {n}")
        world.dead_letter(
            OutgoingRecord(world.topics.goals, record.key, record.value, record.headers),
            TimeoutError("slow"),
        )
    world.indexed(3)
    target = world.topics.tasks("echo")  # an existing topic of the installation

    missing = order(
        world, filters=parse_filter("error=TimeoutError"), target_topic="nowhere.at.all"
    )
    world.replayer.submit(missing)
    with pytest.raises(ReplayError, match=r"topic nowhere\.at\.all does not exist"):
        world.replayer.run(missing.request_id)
    assert {letter.status for letter in letters(world)} == {"pending"}

    ask = order(
        world,
        filters=parse_filter("error=TimeoutError topic=goals"),
        target_topic=target,
        rate=50.0,
    )
    progress: list[int] = []
    world.replayer.submit(ask)
    done = world.replayer.run(ask.request_id, on_progress=lambda s: progress.append(s.done))
    assert done.counts["sent"] == 3
    assert progress[-1] == 3
    assert len(world.read(target, 3)) == 3


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("id", "search", "indexed_at")}


def test_indexing_and_replaying_join_the_trace_of_the_dead_message(
    broker: Any, engine: Engine, namespace: str, make_settings: Callable[..., Any]
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    origin = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    record = goal("traced")
    headers = (("traceparent", origin.encode()), *record.headers)
    with running_world(broker, engine, namespace, make_settings, Tracing(provider)) as world:
        world.dead_letter(
            OutgoingRecord(world.topics.goals, record.key, record.value, headers),
            RuntimeError("boom"),
        )
        world.indexed(1)
        (letter,) = letters(world)
        ask = order(world, filters=DeadLetterFilter(ids=(letter.id,)))
        world.replayer.submit(ask)
        world.replayer.run(ask.request_id)
        (sent,) = world.read(world.topics.goals, 1)

    spans = {span.name: span for span in exporter.get_finished_spans()}
    indexed = spans[f"process {world.topics.dlq(world.topics.goals)}"]
    replay = spans[f"send {world.topics.goals}"]
    for span in (indexed, replay):
        assert span.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
        assert span.parent is not None
        assert span.parent.span_id == 0xB7AD6B7169203331  # the message that died
    assert indexed.attributes is not None
    assert indexed.attributes["waypost.dead_letter.error_class"] == "RuntimeError"
    assert replay.attributes is not None
    assert replay.attributes["waypost.dead_letter.id"] == letter.id
    assert replay.attributes["waypost.replay.actor"] == "ann"
    # The replayed message continues from the replay's span; its other headers are kept.
    (traceparent,) = [v for n, v in sent.headers if n == "traceparent"]
    assert (
        traceparent.decode()
        == f"00-{replay.context.trace_id:032x}-{replay.context.span_id:016x}-01"
    )
    assert [h for h in sent.headers if h[0] != "traceparent"][: len(record.headers)] == list(
        record.headers
    )
