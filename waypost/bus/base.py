"""The bus interface: what Waypost needs from a broker, as Protocols.

``waypost.bus.kafka`` implements it with confluent-kafka (the only module that imports
it); ``waypost.bus.memory`` implements it in memory for pure tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from waypost.bus.records import OutgoingRecord, ReceivedRecord
from waypost.errors import PublishError


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic to provision."""

    name: str
    partitions: int


@dataclass(slots=True)
class PublishOutcome:
    """Which records of a batch the broker acknowledged (by index into the batch)."""

    delivered: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)

    def raise_for_failures(self) -> None:
        """Raise PublishError if any record was not acknowledged."""
        if self.failed:
            first = next(iter(self.failed.values()))
            raise PublishError(f"{len(self.failed)} record(s) not acknowledged: {first}")


class Publisher(Protocol):
    """Publishes records and waits until the broker acknowledged or refused each one."""

    def send(self, records: Sequence[OutgoingRecord]) -> PublishOutcome:
        """Publish a batch and wait for every delivery report."""
        ...

    def close(self) -> None:
        """Flush and release the client."""
        ...


class Subscriber(Protocol):
    """Reads records as one member of a consumer group; offsets are committed explicitly."""

    def poll(self, max_records: int, timeout_s: float) -> list[ReceivedRecord]:
        """Up to ``max_records`` records, waiting at most ``timeout_s`` for the first."""
        ...

    def commit(self, records: Sequence[ReceivedRecord]) -> None:
        """Commit the offsets just past these records (synchronously)."""
        ...

    def pause(self) -> None:
        """Stop fetching from every assigned partition, including partitions assigned
        while paused; ``poll`` then returns nothing but keeps this member in its group.
        Call it between polls: nothing polled before is lost or delivered twice."""
        ...

    def resume(self) -> None:
        """Fetch again, from just after the last record ``poll`` returned."""
        ...

    def close(self) -> None:
        """Leave the group and release the client."""
        ...


class Admin(Protocol):
    """Topic administration and broker health."""

    def ensure_topics(self, specs: Sequence[TopicSpec]) -> list[str]:
        """Create the topics that do not exist yet; return the names created."""
        ...

    def list_topics(self) -> dict[str, int]:
        """Every topic with its partition count."""
        ...

    def ping(self, timeout_s: float) -> bool:
        """True if the broker answers within the timeout."""
        ...


class Bus(Protocol):
    """Creates the clients a process needs."""

    def publisher(self, client_id: str) -> Publisher:
        """A new publisher."""
        ...

    def subscriber(self, group: str, topics: Sequence[str], client_id: str) -> Subscriber:
        """A new member of ``group`` subscribed to ``topics``."""
        ...

    def admin(self) -> Admin:
        """An admin client."""
        ...
