"""The consumer loop on the in-memory bus: poison records are isolated, offsets are safe.

Each test drives ``run_once()`` by hand; retry delays are zero so nothing waits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson

from waypost.bus.base import PublishOutcome, TopicSpec
from waypost.bus.loop import ConsumerLoop, Delivery
from waypost.bus.memory import MemoryBus, MemoryPublisher
from waypost.bus.records import OutgoingRecord, ReceivedRecord
from waypost.errors import UnexpectedEvent
from waypost.events import AgentInfo, Event, TaskCompleted, default_codec
from waypost.events.modes import ACCEPTED_MODES

TOPIC = "ns.results"
DLQ = "ns.results.dlq"
GROUP = "ns.orchestrator"


def _completed(workflow: str) -> OutgoingRecord:
    payload = TaskCompleted(
        workflow_id=workflow,
        task_id=f"{workflow}-task",
        step="triage",
        capability="triage",
        attempt=1,
        output={},
        confidence=1.0,
        agent=AgentInfo(capability="triage", version="1", instance="i"),
    )
    encoded = default_codec().encode(Event(payload, source="test", id=f"event-{workflow}"))
    return OutgoingRecord(TOPIC, encoded.key, encoded.value, encoded.headers)


def _garbage(key: bytes = b"junk") -> OutgoingRecord:
    # Binary junk with a header the codec reads that is not UTF-8: undecodable twice over.
    return OutgoingRecord(TOPIC, key, b"\x00\x01 not an event", (("ce_id", b"\xfflegacy"),))


@dataclass
class Handler:
    """Records every call (as workflow ids) and fails as its rules say."""

    fail: Callable[[list[str]], BaseException | None] = lambda ids: None
    calls: list[list[str]] = field(default_factory=list)

    def __call__(self, deliveries: Sequence[Delivery]) -> None:
        ids = [d.event.workflow_id or "?" for d in deliveries]
        self.calls.append(ids)
        error = self.fail(ids)
        if error is not None:
            raise error


class FlakyPublisher:
    """A publisher that refuses the first ``refusals`` sends, then delegates."""

    def __init__(self, inner: MemoryPublisher, refusals: int) -> None:
        self.inner = inner
        self.refusals = refusals
        self.sends = 0

    def send(self, records: Sequence[OutgoingRecord]) -> PublishOutcome:
        self.sends += 1
        if self.sends <= self.refusals:
            return PublishOutcome(failed={i: "broker said no" for i in range(len(records))})
        return self.inner.send(records)

    def close(self) -> None:
        self.inner.close()


@dataclass
class Setup:
    bus: MemoryBus
    loop: ConsumerLoop
    handler: Handler

    def committed(self) -> int:
        return self.bus.broker.groups[GROUP].committed.get((TOPIC, 0), 0)

    def dead(self) -> list[ReceivedRecord]:
        return self.bus.broker.records(DLQ)


def _setup(
    *records: OutgoingRecord,
    handler: Handler | None = None,
    transient: tuple[type[BaseException], ...] = (),
    refusals: int = 0,
) -> Setup:
    bus = MemoryBus()
    bus.admin().ensure_topics([TopicSpec(TOPIC, 1), TopicSpec(DLQ, 1)])
    bus.publisher("producer").send(records).raise_for_failures()
    handler = handler or Handler()
    publisher = bus.publisher("dlq")
    loop = ConsumerLoop(
        subscriber=bus.subscriber(GROUP, [TOPIC], "c"),
        dead_letters=FlakyPublisher(publisher, refusals) if refusals else publisher,
        handler=handler,
        group=GROUP,
        codec=default_codec(),
        stop=threading.Event(),
        poll_timeout_s=0,
        max_local_attempts=3,
        transient=transient,
        retry_delay_s=0,
    )
    return Setup(bus, loop, handler)


def _dlq_headers(record: ReceivedRecord) -> dict[str, str]:
    prefix = "waypost-dlq-"
    return {n.removeprefix(prefix): v.decode() for n, v in record.headers if n.startswith(prefix)}


def _failing_for(*bad: str, error: Callable[[], BaseException] = lambda: RuntimeError("poison")):
    return lambda ids: error() if any(i in bad for i in ids) else None


def test_a_good_batch_is_handled_once_and_committed() -> None:
    setup = _setup(_completed("a"), _completed("b"))

    assert setup.loop.run_once() == 2

    assert setup.handler.calls == [["a", "b"]]
    assert setup.committed() == 2
    assert setup.dead() == []
    assert setup.loop.run_once() == 0


def test_an_undecodable_record_is_dead_lettered_byte_for_byte_and_the_loop_goes_on() -> None:
    garbage = _garbage()
    setup = _setup(_completed("a"), garbage, _completed("b"))

    setup.loop.run_once()

    assert setup.handler.calls == [["a", "b"]]
    assert setup.committed() == 3
    assert setup.loop.dead_lettered == 1
    (letter,) = setup.dead()
    assert (letter.key, letter.value) == (garbage.key, garbage.value)
    assert letter.headers[: len(garbage.headers)] == garbage.headers
    headers = _dlq_headers(letter)
    assert {k: headers[k] for k in ("source-topic", "source-partition", "source-offset")} == {
        "source-topic": TOPIC,
        "source-partition": "0",
        "source-offset": "1",
    }
    assert headers["consumer-group"] == GROUP
    assert headers["error-class"] == "UndecodableEvent"
    assert headers["error-message"] == f"header 'ce_id' is not UTF-8. {ACCEPTED_MODES}"
    assert headers["attempts"] == "1"
    assert headers["first-failure"] == headers["last-failure"]
    assert len(headers["stack-digest"]) == 16


def test_a_record_breaking_its_schema_is_dead_lettered_as_invalid() -> None:
    good = _completed("a")
    broken = OutgoingRecord(TOPIC, b"a", orjson.dumps({"workflow_id": "a"}), good.headers)
    setup = _setup(broken, _completed("b"))

    setup.loop.run_once()

    assert setup.handler.calls == [["b"]]
    (letter,) = setup.dead()
    assert letter.value == broken.value
    assert _dlq_headers(letter)["error-class"] == "InvalidEvent"
    assert setup.committed() == 2


def test_a_batch_of_only_undecodable_records_is_committed_without_calling_the_handler() -> None:
    setup = _setup(_garbage(b"1"), _garbage(b"2"))

    setup.loop.run_once()

    assert setup.handler.calls == []
    assert [r.key for r in setup.dead()] == [b"1", b"2"]
    assert setup.committed() == 2


def test_a_poison_record_is_isolated_retried_and_dead_lettered_alone() -> None:
    handler = Handler(fail=_failing_for("b"))
    setup = _setup(_completed("a"), _completed("b"), _completed("c"), handler=handler)

    setup.loop.run_once()

    # The batch fails as a whole, then every record runs alone; only b keeps failing.
    assert handler.calls == [["a", "b", "c"], ["a"], ["b"], ["b"], ["b"], ["c"]]
    (letter,) = setup.dead()
    assert letter.value == setup.bus.broker.records(TOPIC)[1].value
    headers = _dlq_headers(letter)
    assert (headers["error-class"], headers["error-message"]) == ("RuntimeError", "poison")
    assert headers["attempts"] == "3"
    assert headers["source-offset"] == "1"
    assert headers["first-failure"] <= headers["last-failure"]
    assert setup.committed() == 3


def test_a_lone_failing_record_counts_its_first_failure_as_an_attempt() -> None:
    handler = Handler(fail=_failing_for("a"))
    setup = _setup(_completed("a"), handler=handler)

    setup.loop.run_once()

    assert handler.calls == [["a"]] * 3
    assert _dlq_headers(setup.dead()[0])["attempts"] == "3"
    assert setup.committed() == 1


def test_a_record_that_succeeds_on_a_local_retry_is_not_dead_lettered() -> None:
    failures = iter([RuntimeError("flaky")])
    handler = Handler(fail=lambda ids: next(failures, None))
    setup = _setup(_completed("a"), handler=handler)

    setup.loop.run_once()

    assert handler.calls == [["a"], ["a"]]
    assert setup.dead() == []
    assert setup.committed() == 1


def test_an_event_error_from_the_handler_is_dead_lettered_without_retries() -> None:
    handler = Handler(fail=_failing_for("a", error=lambda: UnexpectedEvent("not mine")))
    setup = _setup(_completed("a"), handler=handler)

    setup.loop.run_once()

    assert handler.calls == [["a"]]
    headers = _dlq_headers(setup.dead()[0])
    assert (headers["error-class"], headers["attempts"]) == ("UnexpectedEvent", "1")
    assert setup.committed() == 1


def test_an_event_error_in_a_batch_dead_letters_only_its_record_after_one_try() -> None:
    handler = Handler(fail=_failing_for("b", error=lambda: UnexpectedEvent("not mine")))
    setup = _setup(_completed("a"), _completed("b"), _completed("c"), handler=handler)

    setup.loop.run_once()

    assert handler.calls == [["a", "b", "c"], ["a"], ["b"], ["c"]]
    assert [_dlq_headers(r)["source-offset"] for r in setup.dead()] == ["1"]
    assert _dlq_headers(setup.dead()[0])["attempts"] == "1"


def test_a_transient_error_is_retried_in_place_and_never_dead_lettered() -> None:
    failures = iter([ConnectionError("db down")] * 5)
    handler = Handler(fail=lambda ids: next(failures, None))
    setup = _setup(_completed("a"), _completed("b"), handler=handler, transient=(ConnectionError,))

    setup.loop.run_once()

    # The whole batch is retried as one until the outage clears; nothing is isolated.
    assert handler.calls == [["a", "b"]] * 6
    assert setup.dead() == []
    assert setup.committed() == 2


def test_a_transient_error_during_isolation_is_retried_too() -> None:
    calls = {"a": 0}

    def fail(ids: list[str]) -> BaseException | None:
        if len(ids) > 1:
            return RuntimeError("batch failed")
        calls["a"] += ids == ["a"]
        return ConnectionError("blip") if ids == ["a"] and calls["a"] < 3 else None

    handler = Handler(fail=fail)
    setup = _setup(_completed("a"), _completed("b"), handler=handler, transient=(ConnectionError,))

    setup.loop.run_once()

    assert handler.calls == [["a", "b"], ["a"], ["a"], ["a"], ["b"]]
    assert setup.dead() == []


def test_offsets_stay_uncommitted_when_stopping_while_the_handler_fails() -> None:
    handler = Handler(fail=_failing_for("b"))
    setup = _setup(_completed("a"), _garbage(), _completed("b"), handler=handler)
    setup.loop.stop.set()

    assert setup.loop.run_once() == 3

    assert setup.committed() == 0
    assert setup.dead() == []  # not even the undecodable record: the batch will come again


def test_offsets_stay_uncommitted_when_stopping_during_a_transient_outage() -> None:
    handler = Handler(fail=lambda ids: ConnectionError("db down"))
    setup = _setup(_completed("a"), handler=handler, transient=(ConnectionError,))
    setup.loop.stop.set()

    setup.loop.run_once()

    assert handler.calls == [["a"]]
    assert setup.committed() == 0
    assert setup.dead() == []


def test_a_restarted_member_handles_what_was_not_committed() -> None:
    handler = Handler(fail=lambda ids: RuntimeError("down"))
    setup = _setup(_completed("a"), _completed("b"), handler=handler)
    setup.loop.stop.set()
    setup.loop.run_once()
    setup.loop.subscriber.close()
    handler.fail = lambda ids: None
    handler.calls.clear()

    _restart(setup).run_once()

    assert handler.calls == [["a", "b"]]
    assert setup.committed() == 2
    assert setup.dead() == []


def _restart(setup: Setup) -> ConsumerLoop:
    loop = setup.loop
    return ConsumerLoop(
        subscriber=setup.bus.subscriber(GROUP, [TOPIC], "c2"),
        dead_letters=loop.dead_letters,
        handler=loop.handler,
        group=GROUP,
        codec=loop.codec,
        stop=threading.Event(),
        poll_timeout_s=0,
        retry_delay_s=0,
    )


def test_dead_letters_are_published_again_until_acknowledged() -> None:
    setup = _setup(_garbage(), _completed("a"), refusals=2)

    setup.loop.run_once()

    assert isinstance(setup.loop.dead_letters, FlakyPublisher)
    assert setup.loop.dead_letters.sends == 3
    assert len(setup.dead()) == 1
    assert setup.loop.dead_lettered == 1
    assert setup.committed() == 2


def test_offsets_stay_uncommitted_while_dead_letters_are_refused_at_stop() -> None:
    setup = _setup(_garbage(), _completed("a"), refusals=100)
    setup.loop.stop.set()

    setup.loop.run_once()

    assert setup.committed() == 0
    assert setup.loop.dead_lettered == 0


def test_run_calls_on_idle_when_nothing_arrives_and_leaves_the_group_when_stopped() -> None:
    setup = _setup()
    idle: list[None] = []

    def on_idle() -> None:
        idle.append(None)
        if len(idle) == 2:
            setup.loop.stop.set()

    setup.loop.on_idle = on_idle
    setup.loop.run()

    assert len(idle) == 2
    assert setup.bus.broker.groups[GROUP].members == []


def test_run_handles_records_until_stopped() -> None:
    setup = _setup(_completed("a"))
    setup.loop.on_idle = setup.loop.stop.set

    setup.loop.run()

    assert setup.handler.calls == [["a"]]
    assert setup.committed() == 1
