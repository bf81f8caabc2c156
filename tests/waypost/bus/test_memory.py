"""The in-memory bus: the same Protocols as Kafka, with Kafka's partition and group rules."""

from __future__ import annotations

import zlib

import pytest

from waypost.bus.base import PublishOutcome, TopicSpec
from waypost.bus.memory import MemoryBus
from waypost.bus.records import OutgoingRecord, ReceivedRecord
from waypost.errors import PublishError


def _bus(partitions: int = 4, *topics: str) -> MemoryBus:
    bus = MemoryBus()
    bus.admin().ensure_topics([TopicSpec(t, partitions) for t in topics or ("t",)])
    return bus


def _send(bus: MemoryBus, *keys: bytes | None, topic: str = "t") -> PublishOutcome:
    records = [OutgoingRecord(topic, key, b"v%d" % i, (("h", b"x"),)) for i, key in enumerate(keys)]
    return bus.publisher("p").send(records)


def _values(records: list[ReceivedRecord]) -> list[bytes | None]:
    return [r.value for r in records]


def test_records_are_partitioned_by_key_hash() -> None:
    bus = _bus(4)

    _send(bus, b"alpha", b"beta", b"alpha", None)

    records = bus.broker.records("t")
    by_value = {r.value: r for r in records}
    assert by_value[b"v0"].partition == zlib.crc32(b"alpha") % 4
    assert by_value[b"v1"].partition == zlib.crc32(b"beta") % 4
    assert by_value[b"v2"].partition == by_value[b"v0"].partition
    assert by_value[b"v3"].partition == zlib.crc32(b"") % 4


def test_offsets_count_up_within_each_partition() -> None:
    bus = _bus(3)

    _send(bus, b"k", b"k", b"k")

    assert [(r.offset, r.value) for r in bus.broker.records("t")] == [
        (0, b"v0"),
        (1, b"v1"),
        (2, b"v2"),
    ]


def test_a_record_keeps_its_key_value_and_headers() -> None:
    bus = _bus(1)

    _send(bus, b"key")

    (record,) = bus.broker.records("t")
    assert (record.topic, record.key, record.value, record.headers) == (
        "t",
        b"key",
        b"v0",
        (("h", b"x"),),
    )
    assert record.header("h") == b"x"
    assert record.header("missing") is None


def test_records_for_an_unknown_topic_are_refused_one_by_one() -> None:
    bus = _bus(1)

    outcome = bus.publisher("p").send(
        [OutgoingRecord("t", b"a", b"1"), OutgoingRecord("nope", b"b", b"2")]
    )

    assert outcome.delivered == [0]
    assert outcome.failed == {1: "unknown topic nope"}
    with pytest.raises(PublishError, match="1 record\\(s\\) not acknowledged: unknown topic nope"):
        outcome.raise_for_failures()


def test_an_acknowledged_batch_raises_nothing() -> None:
    _send(_bus(1), b"a").raise_for_failures()


def test_a_lone_member_reads_every_partition() -> None:
    bus = _bus(4)
    _send(bus, *[b"k%d" % i for i in range(20)])
    member = bus.subscriber("g", ["t"], "c1")

    batch = member.poll(100, 0)

    assert sorted(_values(batch)) == sorted(b"v%d" % i for i in range(20))


def test_poll_returns_at_most_max_records() -> None:
    bus = _bus(1)
    _send(bus, *[b"k"] * 5)
    member = bus.subscriber("g", ["t"], "c")

    assert _values(member.poll(2, 0)) == [b"v0", b"v1"]


def test_poll_on_an_empty_topic_returns_nothing() -> None:
    assert _bus(2).subscriber("g", ["t"], "c").poll(10, 0) == []


def test_members_of_a_group_split_the_partitions_and_rebalance() -> None:
    bus = _bus(4)
    first = bus.subscriber("g", ["t"], "c1")
    second = bus.subscriber("g", ["t"], "c2")
    _send(bus, *[b"k%d" % i for i in range(40)])

    first_partitions = {r.partition for r in first.poll(100, 0)}
    second_partitions = {r.partition for r in second.poll(100, 0)}

    assert first_partitions == {0, 2}
    assert second_partitions == {1, 3}

    second.close()
    assert {r.partition for r in first.poll(100, 0)} == {0, 1, 2, 3}


def test_each_group_reads_every_record() -> None:
    bus = _bus(2)
    _send(bus, b"a", b"b", b"c")

    one = bus.subscriber("one", ["t"], "c")
    other = bus.subscriber("other", ["t"], "c")

    assert sorted(_values(one.poll(10, 0))) == [b"v0", b"v1", b"v2"]
    assert sorted(_values(other.poll(10, 0))) == [b"v0", b"v1", b"v2"]


def test_a_new_member_resumes_after_the_committed_offsets() -> None:
    bus = _bus(1)
    _send(bus, *[b"k"] * 4)
    first = bus.subscriber("g", ["t"], "c1")
    batch = first.poll(2, 0)
    first.commit(batch)
    first.close()

    second = bus.subscriber("g", ["t"], "c2")

    assert _values(second.poll(10, 0)) == [b"v2", b"v3"]


def test_uncommitted_records_are_delivered_again_after_a_restart() -> None:
    bus = _bus(1)
    _send(bus, b"k", b"k")
    first = bus.subscriber("g", ["t"], "c1")
    first.poll(10, 0)
    first.close()

    assert _values(bus.subscriber("g", ["t"], "c2").poll(10, 0)) == [b"v0", b"v1"]


def test_commits_never_move_an_offset_back() -> None:
    bus = _bus(1)
    _send(bus, *[b"k"] * 3)
    member = bus.subscriber("g", ["t"], "c")
    records = member.poll(10, 0)

    member.commit(records[2:])
    member.commit(records[:1])
    member.close()

    assert bus.subscriber("g", ["t"], "c").poll(10, 0) == []


def test_a_second_poll_continues_after_the_first_without_a_commit() -> None:
    # Kafka advances a member's position on poll; only a rebalance (a member joining or
    # leaving) rewinds it to the committed offset.
    bus = _bus(1)
    _send(bus, b"k", b"k", b"k")
    member = bus.subscriber("g", ["t"], "c")

    first = member.poll(2, 0)
    second = member.poll(2, 0)

    assert _values(first) == [b"v0", b"v1"]
    assert _values(second) == [b"v2"]


def test_a_topic_created_after_subscribing_is_read() -> None:
    bus = _bus(1, "t")
    member = bus.subscriber("g", ["t", "late"], "c")
    bus.admin().ensure_topics([TopicSpec("late", 2)])
    _send(bus, b"k", topic="late")

    assert _values(member.poll(10, 0)) == [b"v0"]


def test_admin_creates_only_missing_topics_and_lists_them() -> None:
    admin = MemoryBus().admin()

    assert admin.ensure_topics([TopicSpec("a", 2), TopicSpec("b", 1)]) == ["a", "b"]
    assert admin.ensure_topics([TopicSpec("a", 8), TopicSpec("c", 3)]) == ["c"]
    assert admin.list_topics() == {"a": 2, "b": 1, "c": 3}
    assert admin.ping(0.1) is True


def test_clients_of_one_broker_share_it() -> None:
    bus = _bus(1)
    other = MemoryBus(bus.broker)

    _send(bus, b"k")

    assert _values(other.subscriber("g", ["t"], "c").poll(10, 0)) == [b"v0"]
