"""BrokerRecycler: when `waypost up` restarts the embedded broker to bound its memory."""

from __future__ import annotations

import os

import pytest

from waypost.errors import ConfigError
from waypost.settings import StackSettings, load
from waypost.stack.recycler import BrokerRecycler, resident_bytes

MB = 2**20


class Stack:
    """The broker's memory, whether anything is in flight, and the restarts asked for."""

    def __init__(self) -> None:
        self.now = 0.0
        self.rss = 10 * MB
        self.busy = False
        self.longest: int | None = 10
        self.restarts: list[str] = []

    def recycler(self) -> BrokerRecycler:
        return BrokerRecycler(
            pid=lambda: 42,
            limit_bytes=100 * MB,
            quiet=lambda: not self.busy,
            restart=self.restarts.append,
            clock=lambda: self.now,
            rss=lambda _pid: self.rss,
            longest=lambda: self.longest,
            partition_limit=1000,
        )

    def tick(self, recycler: BrokerRecycler, seconds: float = 5.0) -> None:
        self.now += seconds
        recycler.check()


def test_below_three_quarters_of_the_limit_nothing_happens() -> None:
    stack = Stack()
    recycler = stack.recycler()
    stack.rss = 74 * MB
    stack.tick(recycler)
    assert stack.restarts == []


def test_past_three_quarters_it_waits_for_a_quiet_moment() -> None:
    stack = Stack()
    recycler = stack.recycler()
    stack.rss, stack.busy = 80 * MB, True
    stack.tick(recycler)
    assert stack.restarts == []

    stack.busy = False
    stack.tick(recycler)
    assert stack.restarts == ["it holds 80 MB of a 100 MB limit and nothing is in flight"]


def test_near_the_limit_it_restarts_even_when_busy() -> None:
    stack = Stack()
    recycler = stack.recycler()
    stack.rss, stack.busy = 89 * MB, True
    stack.tick(recycler)
    assert stack.restarts == []
    stack.rss = 90 * MB
    stack.tick(recycler)
    assert stack.restarts == ["it holds 90 MB, close to its 100 MB limit"]
    assert recycler.recycled == 1


def test_it_looks_only_every_interval() -> None:
    stack = Stack()
    recycler = stack.recycler()
    stack.tick(recycler)  # looked: small
    stack.rss = 100 * MB
    stack.tick(recycler, seconds=1.0)
    assert stack.restarts == []
    stack.tick(recycler, seconds=4.0)
    assert len(stack.restarts) == 1


def test_a_limit_too_low_for_the_broker_does_not_restart_it_in_a_loop() -> None:
    stack = Stack()
    recycler = stack.recycler()
    stack.rss = 100 * MB  # still that big right after each restart
    stack.tick(recycler)
    for _ in range(11):
        stack.tick(recycler)  # 55 s later
    assert len(stack.restarts) == 1
    stack.tick(recycler)  # 60 s after the first
    assert len(stack.restarts) == 2


def test_a_long_partition_waits_for_a_quiet_moment_until_it_is_twice_the_limit() -> None:
    stack = Stack()
    recycler = stack.recycler()
    stack.longest, stack.busy = 1500, True
    stack.tick(recycler)
    assert stack.restarts == []
    stack.busy = False
    stack.tick(recycler)
    assert stack.restarts == [
        "a partition holds 1500 records of a 1000 limit and nothing is in flight"
    ]

    stack.now += 60
    stack.longest, stack.busy = 2000, True
    stack.tick(recycler)
    assert stack.restarts[-1] == "a partition holds 2000 records, twice the limit"


def test_a_broker_that_cannot_say_how_long_its_partitions_are_is_left_alone() -> None:
    stack = Stack()
    recycler = stack.recycler()
    stack.longest = None
    stack.tick(recycler)
    assert stack.restarts == []


def test_no_limit_never_restarts() -> None:
    stack = Stack()
    recycler = stack.recycler()
    recycler.limit_bytes, recycler.partition_limit = 0, 0
    stack.rss, stack.longest = 10_000 * MB, 10**9
    stack.tick(recycler)
    assert stack.restarts == []


def test_resident_memory_of_a_live_and_a_missing_process() -> None:
    assert (resident_bytes(os.getpid()) or 0) > MB
    assert resident_bytes(2**22 + 12345) is None


@pytest.mark.parametrize("value", ["1", "63"])
def test_a_limit_too_low_for_an_empty_broker_is_refused(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYPOST_BROKER_MEMORY_LIMIT_MB", value)
    with pytest.raises(ConfigError, match="WAYPOST_BROKER_MEMORY_LIMIT_MB"):
        load(StackSettings)
