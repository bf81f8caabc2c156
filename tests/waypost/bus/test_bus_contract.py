"""One contract, two buses: every case runs on the in-memory bus AND on the real broker.

The memory bus stands in for Kafka in pure tests, so it must behave like the real thing
wherever Waypost relies on the behaviour: topic provisioning, per-record publish outcomes,
records arriving intact, committed offsets surviving a member, independent groups.
The ``under_test`` fixture is in ``conftest.py``, its helpers in ``contract.py``.
"""

from __future__ import annotations

import pytest

from tests.waypost.bus.contract import BusUnderTest, collect, records
from waypost.bus.base import TopicSpec
from waypost.bus.records import OutgoingRecord

pytestmark = pytest.mark.integration


def test_ensure_topics_creates_with_partitions_once(under_test: BusUnderTest) -> None:
    admin = under_test.bus.admin()
    specs = [TopicSpec(under_test.topic("three"), 3), TopicSpec(under_test.topic("one"), 1)]

    created = admin.ensure_topics(specs)
    again = admin.ensure_topics(specs)

    assert sorted(created) == sorted(s.name for s in specs)
    assert again == []
    topics = admin.list_topics()
    assert topics[under_test.topic("three")] == 3
    assert topics[under_test.topic("one")] == 1


def test_ensure_topics_creates_only_the_missing_ones(under_test: BusUnderTest) -> None:
    admin = under_test.bus.admin()
    existing = under_test.create("existing", 2)

    created = admin.ensure_topics([TopicSpec(existing, 5), TopicSpec(under_test.topic("fresh"), 2)])

    assert created == [under_test.topic("fresh")]
    # An existing topic keeps its partition count: provisioning never alters topics.
    assert admin.list_topics()[existing] == 2


def test_list_topics_has_no_topics_of_this_namespace_before_creation(
    under_test: BusUnderTest,
) -> None:
    admin = under_test.bus.admin()
    assert not [t for t in admin.list_topics() if t.startswith(under_test.namespace + ".")]

    under_test.create("a", 2)
    under_test.create("b", 1)

    ours = {
        name: partitions
        for name, partitions in admin.list_topics().items()
        if name.startswith(under_test.namespace + ".")
    }
    assert ours == {under_test.topic("a"): 2, under_test.topic("b"): 1}


def test_publish_reports_every_index_delivered(under_test: BusUnderTest) -> None:
    topic = under_test.create("batch", 3)
    publisher = under_test.bus.publisher("contract")
    try:
        outcome = publisher.send(records(topic, 25))
    finally:
        publisher.close()

    assert sorted(outcome.delivered) == list(range(25))
    assert outcome.failed == {}
    outcome.raise_for_failures()  # nothing to raise


def test_publish_to_a_missing_topic_is_reported_failed(under_test: BusUnderTest) -> None:
    topic = under_test.create("present", 1)
    batch = [
        OutgoingRecord(topic, b"k0", b"v0"),
        OutgoingRecord(under_test.topic("missing"), b"k1", b"v1"),
        OutgoingRecord(topic, b"k2", b"v2"),
    ]
    publisher = under_test.bus.publisher("contract")
    try:
        outcome = publisher.send(batch)
    finally:
        publisher.close()

    assert sorted(outcome.delivered) == [0, 2]
    assert list(outcome.failed) == [1]
    assert outcome.failed[1]  # a reason, for the log
    # Never auto-created: provisioning is explicit.
    assert under_test.topic("missing") not in under_test.bus.admin().list_topics()


def test_subscriber_receives_key_value_and_headers_intact(under_test: BusUnderTest) -> None:
    topic = under_test.create("intact", 2)
    subscriber = under_test.subscriber(under_test.group("g"), [topic])
    sent = [
        *records(topic, 5),
        OutgoingRecord(topic, None, b"no key", (("empty", b""),)),
        OutgoingRecord(topic, b"tombstone", None),
        OutgoingRecord(topic, b"binary", bytes(range(256)), (("raw", b"\x00\xff"),)),
    ]
    publisher = under_test.bus.publisher("contract")
    try:
        publisher.send(sent).raise_for_failures()
    finally:
        publisher.close()

    received = collect(subscriber, len(sent))

    assert sorted((r.key or b"", r.value or b"", r.headers) for r in received) == sorted(
        (r.key or b"", r.value or b"", r.headers) for r in sent
    )
    assert {r.topic for r in received} == {topic}
    tombstone = next(r for r in received if r.key == b"tombstone")
    assert tombstone.value is None
    no_key = next(r for r in received if r.value == b"no key")
    assert no_key.key is None
    assert no_key.header("empty") == b""
    assert received[0].header("absent") is None


def test_polling_again_does_not_redeliver_uncommitted_records(under_test: BusUnderTest) -> None:
    # A member's position moves forward as it polls; only a new member (after a
    # rebalance or restart) goes back to the committed offset.
    topic = under_test.create("position", 1)
    subscriber = under_test.subscriber(under_test.group("g"), [topic])
    publisher = under_test.bus.publisher("contract")
    try:
        publisher.send(records(topic, 3)).raise_for_failures()
        first = collect(subscriber, 3, settle_s=0)
        publisher.send(records(topic, 1, prefix="next")).raise_for_failures()
    finally:
        publisher.close()

    second = collect(subscriber, 1)

    assert [r.value for r in first] == [b"v-0", b"v-1", b"v-2"]
    assert [r.value for r in second] == [b"next-0"]


def test_records_of_one_key_keep_their_order(under_test: BusUnderTest) -> None:
    topic = under_test.create("ordered", 3)
    subscriber = under_test.subscriber(under_test.group("g"), [topic])
    batch = [OutgoingRecord(topic, b"same-key", str(i).encode()) for i in range(20)]
    publisher = under_test.bus.publisher("contract")
    try:
        publisher.send(batch).raise_for_failures()
    finally:
        publisher.close()

    received = collect(subscriber, 20)

    assert [r.value for r in received] == [str(i).encode() for i in range(20)]
    assert len({r.partition for r in received}) == 1
    assert [r.offset for r in received] == sorted(r.offset for r in received)


def test_a_new_member_resumes_after_the_committed_offset(under_test: BusUnderTest) -> None:
    topic = under_test.create("resume", 1)
    group = under_test.group("resume")
    publisher = under_test.bus.publisher("contract")
    try:
        publisher.send(records(topic, 6)).raise_for_failures()
        first = under_test.subscriber(group, [topic])
        received = collect(first, 6)
        assert [r.value for r in received] == [f"v-{i}".encode() for i in range(6)]
        first.commit(received[:3])
        under_test.close(first)

        publisher.send(records(topic, 2, prefix="later")).raise_for_failures()
    finally:
        publisher.close()
    second = under_test.subscriber(group, [topic])
    resumed = collect(second, 5)

    # Exactly what came after the commit: uncommitted records again, then the new ones.
    assert [r.value for r in resumed] == [
        b"v-3",
        b"v-4",
        b"v-5",
        b"later-0",
        b"later-1",
    ]
    assert [r.offset for r in resumed] == [3, 4, 5, 6, 7]


def test_commit_of_nothing_is_harmless(under_test: BusUnderTest) -> None:
    topic = under_test.create("nothing", 1)
    subscriber = under_test.subscriber(under_test.group("g"), [topic])
    subscriber.commit([])


def test_two_groups_each_receive_everything(under_test: BusUnderTest) -> None:
    topic = under_test.create("fanout", 3)
    one = under_test.subscriber(under_test.group("one"), [topic])
    two = under_test.subscriber(under_test.group("two"), [topic])
    publisher = under_test.bus.publisher("contract")
    try:
        publisher.send(records(topic, 12)).raise_for_failures()
    finally:
        publisher.close()

    expected = sorted(f"v-{i}".encode() for i in range(12))
    assert sorted(r.value or b"" for r in collect(one, 12)) == expected
    assert sorted(r.value or b"" for r in collect(two, 12)) == expected


def test_one_subscriber_reads_several_topics(under_test: BusUnderTest) -> None:
    first = under_test.create("first", 2)
    second = under_test.create("second", 1)
    subscriber = under_test.subscriber(under_test.group("g"), [first, second])
    publisher = under_test.bus.publisher("contract")
    try:
        publisher.send([*records(first, 3), *records(second, 2)]).raise_for_failures()
    finally:
        publisher.close()

    received = collect(subscriber, 5)

    assert sorted(r.topic for r in received) == [first] * 3 + [second] * 2


def test_ping(under_test: BusUnderTest) -> None:
    assert under_test.bus.admin().ping(timeout_s=5.0) is True
