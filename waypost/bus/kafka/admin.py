"""Topic provisioning, topic ids, log ends and broker health behind ``Admin``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]
from confluent_kafka.cimpl import NewTopic

from waypost.bus.base import TopicSpec
from waypost.bus.kafka.errors import MISSING_TOPIC
from waypost.errors import BusError, TopicError


class KafkaAdmin:
    """Creates topics explicitly and answers health checks."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._admin = AdminClient(config)

    def _metadata(self) -> Any:
        try:
            return self._admin.list_topics(timeout=10)
        except KafkaException as exc:
            raise TopicError(f"cannot reach the broker to list topics: {exc}") from None

    def list_topics(self) -> dict[str, int]:
        """Every topic with its partition count."""
        return {
            name: len(topic.partitions)
            for name, topic in self._metadata().topics.items()
            if topic.error is None
        }

    def ensure_topics(self, specs: Sequence[TopicSpec]) -> list[str]:
        """Create the topics that do not exist yet; return the names created."""
        metadata = self._metadata()
        existing = {n for n, t in metadata.topics.items() if t.error is None}
        wanted = [s for s in specs if s.name not in existing]
        if not wanted:
            return []
        # One broker (the embedded one) cannot hold more than one replica; a cluster
        # uses its own default replication factor.
        replicas = 1 if len(metadata.brokers) == 1 else -1
        futures = self._admin.create_topics(
            [
                NewTopic(s.name, num_partitions=s.partitions, replication_factor=replicas)
                for s in wanted
            ],
            operation_timeout=30,
        )
        created = []
        for name, future in futures.items():
            try:
                future.result()
                created.append(name)
            except KafkaException as exc:
                error = exc.args[0]
                if (
                    isinstance(error, KafkaError)
                    and error.code() == KafkaError.TOPIC_ALREADY_EXISTS
                ):
                    continue
                raise TopicError(f"cannot create topic {name}: {exc}") from None
        return created

    def topic_ids(self, names: list[str]) -> dict[str, str | None]:
        """Each topic's id (None: it does not exist); BusError if the broker cannot tell."""
        futures = self._admin.describe_topics(TopicCollection(names), request_timeout=5)
        found: dict[str, str | None] = {}
        for name, future in futures.items():
            try:
                found[name] = str(future.result().topic_id)
            except KafkaException as exc:
                error = exc.args[0]
                if isinstance(error, KafkaError) and error.code() in MISSING_TOPIC:
                    found[name] = None
                else:
                    raise BusError(f"cannot describe topic {name}: {exc}") from None
        return found

    def longest_partition(self, specs: Sequence[TopicSpec]) -> int | None:
        """The log end offset of the longest partition of these topics (None if the
        broker cannot tell). On the embedded broker this is an upper bound of the
        partition's batches, which is what slows its fetches."""
        wanted = {
            TopicPartition(spec.name, partition): OffsetSpec.latest()  # type: ignore[no-untyped-call]
            for spec in specs
            for partition in range(spec.partitions)
        }
        if not wanted:
            return 0
        ends = []
        for future in self._admin.list_offsets(wanted, request_timeout=5).values():
            try:
                ends.append(int(future.result().offset))
            except KafkaException:
                continue  # a topic not (yet) created again after a restart
        return max(ends, default=None)

    def ping(self, timeout_s: float) -> bool:
        """True if the broker answers a metadata request in time."""
        try:
            self._admin.list_topics(timeout=timeout_s)
        except KafkaException:
            return False
        return True
