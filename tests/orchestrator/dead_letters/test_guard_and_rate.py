"""The loop guard and a replay's pace, without a broker or a database: the guard
refuses from the limit on unless forced; the token bucket lets a second's worth through
at once and makes the rest wait for their tokens."""

from __future__ import annotations

import threading

import pytest

from orchestrator.dead_letters.guard import refusal
from orchestrator.dead_letters.rate import CHUNK, TokenBucket, chunk_size


@pytest.mark.parametrize(("count", "refused"), [(0, False), (2, False), (3, True), (7, True)])
def test_the_loop_guard_refuses_from_the_limit_on(count: int, refused: bool) -> None:
    reason = refusal(count, max_replays=3, force=False)

    assert (reason is not None) == refused
    if reason is not None:
        assert f"replayed {count} time(s) already (limit 3)" in reason
        assert "force the replay" in reason


def test_a_forced_replay_passes_the_loop_guard() -> None:
    assert refusal(9, max_replays=3, force=True) is None


@pytest.mark.parametrize(
    ("rate", "size"), [(None, CHUNK), (0.5, 1), (1.0, 1), (200.0, 200), (10_000.0, CHUNK)]
)
def test_a_chunk_is_a_seconds_worth_at_most(rate: float | None, size: int) -> None:
    assert chunk_size(rate) == size


class FakeTime:
    """A clock that moves only when the bucket waits (``stop.wait`` stands in for it)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waited: list[float] = []

    def clock(self) -> float:
        return self.now


class WaitingEvent(threading.Event):
    """An event whose waits pass fake time instead of real time."""

    def __init__(self, time: FakeTime) -> None:
        super().__init__()
        self.time = time

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.time.waited.append(timeout)
        self.time.now += timeout
        return self.is_set()


def test_the_bucket_sends_a_seconds_worth_at_once_then_paces() -> None:
    time = FakeTime()
    stop = WaitingEvent(time)
    bucket = TokenBucket(10.0, clock=time.clock)

    assert bucket.wait_for(10, stop)  # the first second's worth goes at once
    assert time.waited == []
    assert bucket.wait_for(5, stop)  # no time passed: half a second for 5 tokens
    assert time.waited == [pytest.approx(0.5)]
    time.now += 1.0  # a second later, 10 tokens are back
    assert bucket.wait_for(10, stop)
    assert time.waited == [pytest.approx(0.5)]


def test_a_stopped_bucket_gives_up_instead_of_taking_tokens() -> None:
    time = FakeTime()
    stop = WaitingEvent(time)
    bucket = TokenBucket(2.0, clock=time.clock)
    assert bucket.wait_for(2, stop)
    stop.set()

    assert not bucket.wait_for(2, stop)
    assert time.waited == [pytest.approx(1.0)]
