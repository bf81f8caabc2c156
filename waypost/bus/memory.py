"""An in-memory bus for pure tests: same Protocols as the Kafka bus, no network.

Group members split partitions round-robin, re-assigned whenever a member joins or leaves;
positions restart from the group's committed offsets, as after a Kafka rebalance.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from waypost.bus.base import PublishOutcome, TopicSpec
from waypost.bus.records import OutgoingRecord, ReceivedRecord


@dataclass
class _Group:
    members: list[MemorySubscriber] = field(default_factory=list)
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    layout: int = -1  # the broker layout the current assignment was made for


class MemoryBroker:
    """Topics, partitions and committed offsets, shared by every client made from it."""

    def __init__(self) -> None:
        self.topics: dict[str, list[list[ReceivedRecord]]] = {}
        self.groups: dict[str, _Group] = {}
        self.changed = threading.Condition()
        self.layout = 0  # bumped when topics are created: members then re-balance

    def records(self, topic: str) -> list[ReceivedRecord]:
        """Every record of a topic, partition by partition (for assertions)."""
        with self.changed:
            return [r for partition in self.topics.get(topic, []) for r in partition]

    def _rebalance(self, group: _Group) -> None:
        group.layout = self.layout
        for index, member in enumerate(group.members):
            member._assign(
                [
                    (topic, p)
                    for topic in member.topics
                    for p in range(len(self.topics.get(topic, [])))
                    if p % len(group.members) == index
                ],
                group.committed,
            )


class MemoryBus:
    """Creates in-memory clients on one MemoryBroker."""

    def __init__(self, broker: MemoryBroker | None = None) -> None:
        self.broker = broker or MemoryBroker()

    def publisher(self, client_id: str) -> MemoryPublisher:
        """A publisher."""
        return MemoryPublisher(self.broker)

    def subscriber(self, group: str, topics: Sequence[str], client_id: str) -> MemorySubscriber:
        """A new member of ``group``."""
        return MemorySubscriber(self.broker, group, list(topics))

    def admin(self) -> MemoryAdmin:
        """An admin client."""
        return MemoryAdmin(self.broker)


class MemoryPublisher:
    """Appends records to partitions chosen by key hash."""

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker

    def send(self, records: Sequence[OutgoingRecord]) -> PublishOutcome:
        """Append every record whose topic exists; refuse the others."""
        outcome = PublishOutcome()
        with self._broker.changed:
            for index, record in enumerate(records):
                partitions = self._broker.topics.get(record.topic)
                if partitions is None:
                    outcome.failed[index] = f"unknown topic {record.topic}"
                    continue
                number = zlib.crc32(record.key or b"") % len(partitions)
                log = partitions[number]
                log.append(
                    ReceivedRecord(
                        record.topic, number, len(log), record.key, record.value, record.headers
                    )
                )
                outcome.delivered.append(index)
            self._broker.changed.notify_all()
        return outcome

    def close(self) -> None:
        """Nothing to release."""


class MemorySubscriber:
    """A group member reading its assigned partitions from the committed offsets."""

    def __init__(self, broker: MemoryBroker, group: str, topics: list[str]) -> None:
        self._broker = broker
        self.topics = topics
        self.paused = False
        self._positions: dict[tuple[str, int], int] = {}
        with broker.changed:
            self._group = broker.groups.setdefault(group, _Group())
            self._group.members.append(self)
            broker._rebalance(self._group)

    def _assign(
        self, partitions: list[tuple[str, int]], committed: dict[tuple[str, int], int]
    ) -> None:
        self._positions = {tp: committed.get(tp, 0) for tp in partitions}

    def poll(self, max_records: int, timeout_s: float) -> list[ReceivedRecord]:
        """Records after this member's positions, waiting up to ``timeout_s`` for one."""
        with self._broker.changed:
            if self._group.layout != self._broker.layout:
                self._broker._rebalance(self._group)  # topics appeared meanwhile
            batch = self._take(max_records)
            if not batch:
                self._broker.changed.wait(timeout_s)
                batch = self._take(max_records)
            return batch

    def _take(self, max_records: int) -> list[ReceivedRecord]:
        batch: list[ReceivedRecord] = []
        if self.paused:
            return batch
        for (topic, partition), position in self._positions.items():
            log = self._broker.topics[topic][partition]
            chunk = log[position : position + max_records - len(batch)]
            batch.extend(chunk)
            self._positions[(topic, partition)] = position + len(chunk)
        return batch

    def commit(self, records: Sequence[ReceivedRecord]) -> None:
        """Commit the offsets just past these records."""
        with self._broker.changed:
            for record in records:
                key = (record.topic, record.partition)
                current = self._group.committed.get(key, 0)
                self._group.committed[key] = max(current, record.offset + 1)

    def pause(self) -> None:
        """Return nothing from ``poll`` until resumed (positions are kept)."""
        with self._broker.changed:
            self.paused = True

    def resume(self) -> None:
        """Deliver again from the current positions."""
        with self._broker.changed:
            self.paused = False

    def close(self) -> None:
        """Leave the group; its partitions go to the remaining members."""
        with self._broker.changed:
            self._group.members.remove(self)
            self._broker._rebalance(self._group)


class MemoryAdmin:
    """Creates topics in the MemoryBroker."""

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker

    def ensure_topics(self, specs: Sequence[TopicSpec]) -> list[str]:
        """Create the missing topics."""
        created = []
        with self._broker.changed:
            for spec in specs:
                if spec.name not in self._broker.topics:
                    self._broker.topics[spec.name] = [[] for _ in range(spec.partitions)]
                    created.append(spec.name)
            if created:
                self._broker.layout += 1
        return created

    def list_topics(self) -> dict[str, int]:
        """Every topic with its partition count."""
        with self._broker.changed:
            return {name: len(parts) for name, parts in self._broker.topics.items()}

    def ping(self, timeout_s: float) -> bool:
        """Always reachable."""
        return True
