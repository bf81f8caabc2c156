"""The consumer loop with ``pause_while_handling`` and handlers that leave work unfinished.

On the in-memory bus, driving ``run_once()`` by hand. A slow batch is handled in a
helper thread while the loop pauses the subscriber and keeps polling it; a handler that
stops part-way hands back what it did not finish, and only the records before the first
unfinished one of each partition are committed.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Sequence
from typing import Any

import pytest

from tests.waiting import wait_for
from tests.waypost.bus.test_loop import DLQ, GROUP, TOPIC, Handler, _completed, _setup
from waypost.bus.base import Subscriber, TopicSpec
from waypost.bus.loop import ConsumerLoop, Delivery
from waypost.bus.memory import MemoryBus, MemorySubscriber
from waypost.bus.records import ReceivedRecord
from waypost.events import default_codec


class Recording:
    """A subscriber (our own interface) that notes pause/resume/poll calls."""

    def __init__(self, inner: Subscriber) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def poll(self, max_records: int, timeout_s: float) -> list[ReceivedRecord]:
        found = self.inner.poll(max_records, timeout_s)
        if not self.calls or self.calls[-1] != "poll":
            self.calls.append("poll")
        return found

    def commit(self, records: Sequence[ReceivedRecord]) -> None:
        self.calls.append("commit")
        self.inner.commit(records)

    def pause(self) -> None:
        self.calls.append("pause")
        self.inner.pause()

    def resume(self) -> None:
        self.calls.append("resume")
        self.inner.resume()

    def close(self) -> None:
        self.inner.close()


def _pausing(*workflows: str, handler: Any = None, pause_after_s: float = 0.0) -> Any:
    setup = _setup(*(_completed(w) for w in workflows), handler=handler)
    setup.loop.subscriber = Recording(setup.loop.subscriber)
    setup.loop.pause_while_handling = True
    setup.loop.pause_after_s = pause_after_s
    return setup


def _paused(setup: Any) -> bool:
    inner = setup.loop.subscriber.inner
    assert isinstance(inner, MemorySubscriber)
    return inner.paused


def test_a_slow_batch_runs_with_the_subscriber_paused_and_polled_then_commits() -> None:
    seen: list[bool] = []

    class Slow(Handler):
        def __call__(self, deliveries: Sequence[Delivery]) -> None:
            # The loop pauses once the batch outlives pause_after_s, and keeps polling.
            wait_for(
                lambda: setup.loop.subscriber.calls[-2:] == ["pause", "poll"],
                what="a poll of the paused subscriber",
            )
            seen.append(_paused(setup))
            super().__call__(deliveries)

    setup = _pausing("a", "b", handler=Slow())

    assert setup.loop.run_once() == 2

    assert seen == [True]
    assert setup.handler.calls == [["a", "b"]]
    assert setup.loop.subscriber.calls == ["poll", "pause", "poll", "resume", "commit"]
    assert not _paused(setup)
    assert setup.committed() == 2


def test_a_quick_batch_is_never_paused() -> None:
    setup = _pausing("a", pause_after_s=30.0)

    setup.loop.run_once()

    assert setup.loop.subscriber.calls == ["poll", "commit"]
    assert setup.committed() == 1


def test_records_that_arrive_while_paused_come_after_resume_none_lost() -> None:
    class Publishes(Handler):
        def __call__(self, deliveries: Sequence[Delivery]) -> None:
            wait_for(lambda: _paused(setup), what="the subscriber paused")
            setup.bus.publisher("late").send([_completed("late")]).raise_for_failures()
            super().__call__(deliveries)

    setup = _pausing("a", handler=Publishes())

    setup.loop.run_once()
    setup.loop.run_once()

    assert setup.handler.calls == [["a"], ["late"]]
    assert setup.committed() == 2


def test_a_poison_record_is_still_isolated_and_dead_lettered_in_the_helper_thread() -> None:
    handler = Handler(fail=lambda ids: RuntimeError("poison") if "b" in ids else None)
    setup = _pausing("a", "b", "c", handler=handler)

    setup.loop.run_once()

    assert handler.calls == [["a", "b", "c"], ["a"], ["b"], ["b"], ["b"], ["c"]]
    assert len(setup.dead()) == 1
    assert setup.committed() == 3


def test_an_error_the_loop_does_not_handle_reaches_the_loop_thread_and_resumes() -> None:
    class Exploding:
        def decode(self, value: bytes | None, headers: Any) -> Any:
            raise RuntimeError("decoder bug")

    setup = _pausing("a")
    setup.loop.codec = Exploding()

    with pytest.raises(RuntimeError, match="decoder bug"):
        setup.loop.run_once()

    assert setup.committed() == 0
    assert not _paused(setup)


class LeavesUnfinished(Handler):
    """Handles some workflows and hands back the deliveries of the others."""

    def __init__(self, *unfinished: str) -> None:
        super().__init__()
        self.unfinished = unfinished

    def __call__(self, deliveries: Sequence[Delivery]) -> list[Delivery] | None:  # type: ignore[override]
        super().__call__(deliveries)
        left = [d for d in deliveries if d.event.workflow_id in self.unfinished]
        return left or None


@pytest.mark.parametrize("pause", [False, True])
def test_only_the_records_before_the_first_unfinished_one_are_committed(pause: bool) -> None:
    setup = _setup(*(_completed(w) for w in "abcd"), handler=LeavesUnfinished("b", "d"))
    setup.loop.pause_while_handling = pause
    setup.loop.pause_after_s = 0.0

    setup.loop.run_once()

    assert setup.committed() == 1  # a; b is unfinished, so c waits too
    again = _restart(setup)
    again.handler = Handler()
    again.run_once()
    assert again.handler.calls == [["b", "c", "d"]]  # type: ignore[attr-defined]


def test_a_handler_that_finishes_nothing_commits_nothing_but_dead_letters() -> None:
    from tests.waypost.bus.test_loop import _garbage

    handler = LeavesUnfinished("a")
    setup = _setup(_garbage(b"1"), _completed("a"), handler=handler)

    setup.loop.run_once()

    assert len(setup.dead()) == 1
    assert setup.committed() == 1  # the dead-lettered record before it


def test_unfinished_records_hold_back_only_their_own_partition() -> None:
    bus = MemoryBus()
    bus.admin().ensure_topics([TopicSpec(TOPIC, 2), TopicSpec(DLQ, 1)])
    by_partition: dict[int, list[str]] = {0: [], 1: []}
    workflow = 0
    while min(len(ids) for ids in by_partition.values()) < 2:
        name = f"w{workflow}"
        by_partition[zlib.crc32(name.encode()) % 2].append(name)
        workflow += 1
    chosen = by_partition[0][:2] + by_partition[1][:2]
    bus.publisher("p").send([_completed(w) for w in chosen]).raise_for_failures()
    loop = ConsumerLoop(
        subscriber=bus.subscriber(GROUP, [TOPIC], "c"),
        dead_letters=bus.publisher("dlq"),
        handler=LeavesUnfinished(by_partition[0][0]),
        group=GROUP,
        codec=default_codec(),
        stop=threading.Event(),
        poll_timeout_s=0,
        retry_delay_s=0,
    )

    loop.run_once()

    committed = bus.broker.groups[GROUP].committed
    assert committed.get((TOPIC, 0), 0) == 0
    assert committed[(TOPIC, 1)] == 2


def test_records_a_handler_leaves_unfinished_during_isolation_are_not_committed() -> None:
    class FailsBatchesThenStops(LeavesUnfinished):
        def __call__(self, deliveries: Sequence[Delivery]) -> list[Delivery] | None:  # type: ignore[override]
            if len(deliveries) > 1:
                self.calls.append([d.event.workflow_id or "?" for d in deliveries])
                raise RuntimeError("batch failed")
            return super().__call__(deliveries)

    setup = _setup(*(_completed(w) for w in "abc"), handler=FailsBatchesThenStops("b"))

    setup.loop.run_once()

    assert setup.handler.calls == [["a", "b", "c"], ["a"], ["b"], ["c"]]
    assert setup.committed() == 1
    assert setup.dead() == []


def _restart(setup: Any) -> ConsumerLoop[Any]:
    setup.loop.subscriber.close()
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
