"""Pause and resume, on the in-memory bus AND the real broker (the ``under_test``
contract of ``test_bus_contract``): a paused member receives nothing, keeps its place, and after
``resume`` receives what it had not, once; partitions it is given while paused stay
paused."""

from __future__ import annotations

import pytest

from tests.waiting import wait_for
from tests.waypost.bus.contract import BusUnderTest, collect, records
from waypost.bus.base import Subscriber
from waypost.bus.records import OutgoingRecord, ReceivedRecord

pytestmark = pytest.mark.integration


def publish(case: BusUnderTest, batch: list[OutgoingRecord]) -> None:
    publisher = case.bus.publisher("contract")
    try:
        publisher.send(batch).raise_for_failures()
    finally:
        publisher.close()


def quiet(subscriber: Subscriber, polls: int = 5) -> list[ReceivedRecord]:
    """What a few bounded polls return (a paused member must get nothing)."""
    found: list[ReceivedRecord] = []
    for _ in range(polls):
        found.extend(subscriber.poll(100, 0.2))
    return found


def test_a_paused_member_gets_nothing_then_everything_once_after_resume(
    under_test: BusUnderTest,
) -> None:
    topic = under_test.create("paused", 2)
    subscriber = under_test.subscriber(under_test.group("g"), [topic])
    publish(under_test, records(topic, 10))
    first: list[ReceivedRecord] = []
    wait_for(lambda: first.extend(subscriber.poll(3, 0.2)) or first, what="a first record")

    subscriber.pause()
    publish(under_test, records(topic, 5, prefix="while-paused"))
    during = quiet(subscriber)
    subscriber.resume()
    rest = collect(subscriber, 15 - len(first))

    assert during == []
    values = sorted(r.value or b"" for r in first + rest)
    expected = [f"v-{i}".encode() for i in range(10)] + [
        f"while-paused-{i}".encode() for i in range(5)
    ]
    assert values == sorted(expected)  # none lost, none twice


def test_partitions_assigned_while_paused_stay_paused(under_test: BusUnderTest) -> None:
    topic = under_test.create("rebalanced", 2)
    group = under_test.group("g")
    first = under_test.subscriber(group, [topic])
    second = under_test.subscriber(group, [topic])
    publish(under_test, records(topic, 20))
    got: dict[int, list[ReceivedRecord]] = {0: [], 1: []}

    def both_busy() -> bool:
        for number, member in enumerate((first, second)):
            got[number].extend(member.poll(100, 0.1))
        return len(got[0]) + len(got[1]) >= 20 and bool(got[0]) and bool(got[1])

    wait_for(both_busy, what="records for both members")
    first.commit(got[0])
    second.commit(got[1])
    assigned = _assignments(first)

    first.pause()
    under_test.close(second)  # its partition goes to the paused member
    publish(under_test, records(topic, 20, prefix="later"))
    wait_for(
        lambda: first.poll(100, 0.1) == [] and _reassigned(first, assigned),
        what="the paused member's new assignment",
    )
    while_paused = quiet(first)
    first.resume()
    after = collect(first, 20)

    assert while_paused == []
    assert {r.partition for r in after} == {0, 1}
    assert sorted(r.value or b"" for r in after) == sorted(f"later-{i}".encode() for i in range(20))


def _assignments(subscriber: Subscriber) -> int | None:
    """How many assignments a Kafka member had (the memory bus re-assigns at once)."""
    count: int | None = getattr(subscriber, "assignments", None)
    return count


def _reassigned(subscriber: Subscriber, before: int | None) -> bool:
    now = _assignments(subscriber)
    return now is None or before is None or now > before
