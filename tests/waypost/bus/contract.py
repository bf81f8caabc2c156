"""What the bus contract tests share: the bus under test and small helpers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from tests.waiting import wait_for
from waypost.bus.base import Bus, Subscriber, TopicSpec
from waypost.bus.records import OutgoingRecord, ReceivedRecord


@dataclass
class BusUnderTest:
    """A bus, a namespace nobody else uses, and the clients to close afterwards."""

    kind: str
    bus: Bus
    namespace: str
    _subscribers: list[Subscriber] = field(default_factory=list)

    def topic(self, name: str) -> str:
        """A topic name inside this test's namespace."""
        return f"{self.namespace}.{name}"

    def group(self, name: str) -> str:
        """A consumer group inside this test's namespace."""
        return f"{self.namespace}.{name}"

    def create(self, name: str, partitions: int = 1) -> str:
        """Create a topic explicitly (Tansu auto-creation is never relied on)."""
        topic = self.topic(name)
        self.bus.admin().ensure_topics([TopicSpec(topic, partitions)])
        return topic

    def subscriber(self, group: str, topics: list[str]) -> Subscriber:
        """A group member that is closed when the test ends (unless closed before)."""
        subscriber = self.bus.subscriber(group, topics, f"test-{uuid.uuid4().hex[:6]}")
        self._subscribers.append(subscriber)
        return subscriber

    def close(self, subscriber: Subscriber) -> None:
        """Leave the group now."""
        self._subscribers.remove(subscriber)
        subscriber.close()

    def close_all(self) -> None:
        for subscriber in self._subscribers:
            subscriber.close()
        self._subscribers.clear()


def collect(
    subscriber: Subscriber, count: int, *, timeout: float = 20.0, settle_s: float = 0.3
) -> list[ReceivedRecord]:
    """Poll until ``count`` records arrived, then poll briefly to catch any extra ones."""
    received: list[ReceivedRecord] = []

    def enough() -> bool:
        received.extend(subscriber.poll(100, 0.2))
        return len(received) >= count

    wait_for(enough, timeout=timeout, interval=0, what=f"{count} record(s)")
    # Not synchronisation: a last bounded poll so duplicates or extras would show up.
    received.extend(subscriber.poll(100, settle_s))
    return received


def records(topic: str, count: int, prefix: str = "v") -> list[OutgoingRecord]:
    """``count`` records with distinct keys, values and headers."""
    return [
        OutgoingRecord(
            topic,
            f"key-{i}".encode(),
            f"{prefix}-{i}".encode(),
            (("n", str(i).encode()), ("kind", b"contract")),
        )
        for i in range(count)
    ]
