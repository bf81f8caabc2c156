"""Topics deleted and created again under a running consumer group (real broker).

The embedded broker deletes every topic when it restarts (memory storage) and Waypost
creates them again; the new topics' offsets start from zero while the group's members
still hold positions and batches of the old logs. What Waypost relies on: a member never
commits an offset of an old log into the new one (such an offset beyond the end of the
new log strands every later member of the group: a fetch there returns nothing, for
good), and every record of the new log is read.

(Deleting one topic with the admin API instead crashes every librdkafka 2.16 consumer
subscribed to it on Tansu 0.6: its Fetch response for the deleted topic carries no topic
id, and librdkafka looks the nameless topic up by name. A restart deletes them all
without that response, which is how topics disappear under Waypost.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.waiting import wait_for
from waypost.bus.base import TopicSpec
from waypost.bus.kafka import KafkaBus, KafkaSubscriber
from waypost.bus.records import OutgoingRecord, ReceivedRecord
from waypost.settings import CommonSettings
from waypost.stack.broker import EmbeddedBroker

pytestmark = pytest.mark.integration


@pytest.fixture
def bus(own_broker: EmbeddedBroker, make_settings: object) -> KafkaBus:
    settings = make_settings(CommonSettings)  # type: ignore[operator]
    return KafkaBus(own_broker.bootstrap, settings)


@pytest.fixture
def topic(bus: KafkaBus, namespace: str) -> str:
    name = f"{namespace}.recreated"
    bus.admin().ensure_topics([TopicSpec(name, 2)])
    return name


@pytest.fixture
def members(bus: KafkaBus, namespace: str, topic: str) -> Iterator[list[KafkaSubscriber]]:
    made: list[KafkaSubscriber] = []
    yield made
    for member in made:
        member.close()


def _publish(bus: KafkaBus, topic: str, values: list[str]) -> None:
    publisher = bus.publisher("recreated-test")
    outcome = publisher.send([OutgoingRecord(topic, v.encode(), v.encode()) for v in values])
    publisher.close()
    outcome.raise_for_failures()


def _recreate(broker: EmbeddedBroker, bus: KafkaBus, topic: str) -> None:
    """Restart the broker empty (every topic, offset and group gone), then create the
    topic again, as Waypost's reconciler does."""
    broker.stop()
    broker.start()
    bus.admin().ensure_topics([TopicSpec(topic, 2)])


def _read(member: KafkaSubscriber, wanted: set[str], into: list[ReceivedRecord]) -> bool:
    into.extend(member.poll(500, 0.2))
    return wanted <= {(r.value or b"").decode() for r in into}


def _reading_the_old_log(
    bus: KafkaBus, topic: str, group: str, members: list[KafkaSubscriber]
) -> tuple[KafkaSubscriber, list[ReceivedRecord], set[str]]:
    """A member of ``group`` that has read 300 records: (member, records, their values)."""
    old = [f"old-{n}" for n in range(300)]
    _publish(bus, topic, old)
    member = bus.subscriber(group, [topic], "first")
    members.append(member)
    batch: list[ReceivedRecord] = []
    wait_for(lambda: _read(member, set(old), batch), what="the old log")
    return member, batch, set(old)


@pytest.mark.slow  # several seconds of broker or browser time: make test-slow
def test_a_batch_of_the_old_log_is_not_committed_into_the_new_one(
    own_broker: EmbeddedBroker,
    bus: KafkaBus,
    topic: str,
    namespace: str,
    members: list[KafkaSubscriber],
) -> None:
    group = f"{namespace}.group"
    first, batch, old = _reading_the_old_log(bus, topic, group, members)

    # The batch is still being handled when the broker restarts empty (as when an
    # agent's results wait for the broker) ...
    _recreate(own_broker, bus, topic)
    new = [f"new-{n}" for n in range(20)]
    _publish(bus, topic, new)
    seen: list[ReceivedRecord] = []
    wait_for(lambda: _read(first, set(new), seen), what="the running member to read the new log")
    # ... and is committed afterwards: that must not move the group into the old log's
    # offsets, far beyond the end of the new one.
    first.commit(batch)
    first.close()
    members.remove(first)

    later = [f"later-{n}" for n in range(5)]
    _publish(bus, topic, later)
    second = bus.subscriber(group, [topic], "second")
    members.append(second)
    received: list[ReceivedRecord] = []
    wait_for(
        lambda: _read(second, set(later), received),
        timeout=30,
        what="a later member of the group to read what arrives in the new log",
    )
    values = {(r.value or b"").decode() for r in received}
    assert not values & old
    assert {r.topic_id for r in received} == {seen[0].topic_id}
    assert seen[0].topic_id != batch[0].topic_id


@pytest.mark.slow  # several seconds of broker or browser time: make test-slow
def test_a_running_member_rewinds_its_position_into_a_recreated_topic(
    own_broker: EmbeddedBroker,
    bus: KafkaBus,
    topic: str,
    namespace: str,
    members: list[KafkaSubscriber],
) -> None:
    member, read, old = _reading_the_old_log(bus, topic, f"{namespace}.group", members)
    member.commit(read)

    _recreate(own_broker, bus, topic)
    new = [f"new-{n}" for n in range(10)]
    _publish(bus, topic, new)

    seen: list[ReceivedRecord] = []
    wait_for(lambda: _read(member, set(new), seen), timeout=30, what="every record of the new log")
    member.commit(seen)
    # Whatever happened meanwhile (a rebalance, a rewind), the member goes on from the
    # new log's end: what arrives next is read, nothing of the old log comes back.
    more = [f"more-{n}" for n in range(5)]
    _publish(bus, topic, more)
    after: list[ReceivedRecord] = []
    wait_for(lambda: _read(member, set(more), after), what="records after the rewind")
    assert not {(r.value or b"").decode() for r in seen + after} & old


@pytest.mark.slow  # several seconds of broker or browser time: make test-slow
def test_a_member_resumed_while_its_partitions_were_lost_fetches_once_they_are_back(
    own_broker: EmbeddedBroker,
    bus: KafkaBus,
    topic: str,
    namespace: str,
    members: list[KafkaSubscriber],
) -> None:
    # An agent worker pauses its partitions while a long batch runs (its results wait
    # for the broker); the broker restarts meanwhile, and the batch ends while the
    # member has no partitions.
    member, _, _ = _reading_the_old_log(bus, topic, f"{namespace}.group", members)
    member.pause()
    revoked_before = member.revocations
    _recreate(own_broker, bus, topic)

    def lost() -> bool:
        member.poll(1, 0.1)
        return member.revocations > revoked_before

    wait_for(lost, timeout=60, what="the partitions to be lost")
    member.resume()
    new = [f"new-{n}" for n in range(10)]
    _publish(bus, topic, new)
    seen: list[ReceivedRecord] = []
    wait_for(lambda: _read(member, set(new), seen), timeout=30, what="the records after resume")
