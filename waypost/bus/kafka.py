"""The Kafka bus: the only module in Waypost that creates confluent-kafka clients.

Producers are idempotent with ``acks=all``; consumers commit manually after handling;
clients never ask the broker to auto-create topics (provisioning is explicit).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]
from confluent_kafka.cimpl import NewTopic

from waypost.bus.base import PublishOutcome, TopicSpec
from waypost.bus.identity import TopicIdentity
from waypost.bus.records import OutgoingRecord, ReceivedRecord
from waypost.errors import BusError, TopicError
from waypost.settings import CommonSettings

log = logging.getLogger(__name__)


class _Throttle(logging.Filter):
    """Lets the same librdkafka message (numbers ignored) through once a minute.

    A broker outage makes every client report "connection refused" several times a
    second; one line a minute per kind says the same.
    """

    def __init__(self, interval_s: float = 60.0) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = re.sub(r"\d+", "#", record.getMessage())
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -self._interval_s) < self._interval_s:
                return False
            self._last[key] = now
        return True


# librdkafka's own log lines (through Python logging rather than raw stderr).
client_log = logging.getLogger("waypost.kafka.client")
client_log.addFilter(_Throttle())

# librdkafka errors that mean "the topic is not there (yet)": after a broker that lost its
# data restarts, or before provisioning ran. The reconciler re-creates topics.
_MISSING_TOPIC = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC}
# Client errors after which a consumer checks its topics' identity at once: the broker
# may have come back without its data.
_SUSPECT = {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, *_MISSING_TOPIC}


class KafkaBus:
    """Creates Kafka clients configured from settings."""

    def __init__(self, bootstrap: str, settings: CommonSettings) -> None:
        self._bootstrap = bootstrap
        self._settings = settings

    def _base(self, client_id: str) -> dict[str, Any]:
        return {
            "bootstrap.servers": self._bootstrap,
            "client.id": client_id,
            "allow.auto.create.topics": False,
            # Notice re-created topics quickly (a Tansu restart forgets every topic).
            "topic.metadata.refresh.interval.ms": 5000,
            "logger": client_log,
            "log_level": 4,  # warnings and worse
            **self._settings.kafka_client_config,
        }

    def publisher(self, client_id: str) -> KafkaPublisher:
        """A new idempotent producer."""
        config = {
            **self._base(client_id),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": self._settings.kafka_linger_ms,
            # Undelivered records are retried by their owner (outbox relay, agent retry);
            # a shorter timeout hands them back sooner when a producer is stuck.
            "message.timeout.ms": 10000,
        }
        return KafkaPublisher(config)

    def subscriber(self, group: str, topics: Sequence[str], client_id: str) -> KafkaSubscriber:
        """A new consumer-group member with manual commits."""
        session = self._settings.kafka_session_timeout_ms
        config = {
            **self._base(client_id),
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": session,
            "heartbeat.interval.ms": max(100, session // 4),
            # librdkafka refuses a poll interval shorter than the session timeout.
            "max.poll.interval.ms": max(self._settings.kafka_max_poll_interval_ms, session),
            "fetch.wait.max.ms": self._settings.kafka_fetch_wait_max_ms,
        }
        return KafkaSubscriber(config, list(topics), self.admin().topic_ids)

    def admin(self) -> KafkaAdmin:
        """An admin client."""
        return KafkaAdmin({**self._base("waypost-admin")})


class KafkaPublisher:
    """An idempotent producer that reports per-record delivery.

    The producer is replaced by a fresh one before the next batch when the last batch
    had an unacknowledged record, when librdkafka reported a fatal error, or when every
    broker was down meanwhile. A broker that restarted without its state (Tansu keeps
    everything in memory) otherwise answers "unknown producer id" to the old producer's
    every request, forever: measured, the old producer never recovers, a new one does at
    once. Replacing it is safe because ``send`` waits for every delivery report, so
    nothing is in flight at that moment.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._stale: str | None = None
        self._lock = threading.Lock()
        self._producer = self._new_producer()

    def _new_producer(self) -> Producer:
        config = {**self._config, "error_cb": self._on_error}
        return Producer(config)

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal() or error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._stale = error.str()

    def send(self, records: Sequence[OutgoingRecord]) -> PublishOutcome:
        """Publish a batch and wait for every delivery report."""
        with self._lock:
            if self._stale is not None:
                log.info("replacing the producer (%s)", self._stale)
                self._producer = self._new_producer()
                self._stale = None
            outcome = PublishOutcome()

            def report(index: int) -> Any:
                def on_delivery(error: KafkaError | None, _message: Message) -> None:
                    if error is None:
                        outcome.delivered.append(index)
                    else:
                        outcome.failed[index] = error.str()

                return on_delivery

            for index, record in enumerate(records):
                self._produce(record, report(index), outcome, index)
            try:
                remaining = self._producer.flush(60)
            except KafkaException as exc:
                # A fatal producer error (e.g. UNKNOWN_PRODUCER_ID from a broker that
                # restarted empty): the unreported records count as failed below.
                self._stale = str(exc)
                remaining = -1
            if remaining > 0:
                log.warning("%d record(s) still unacknowledged after 60 s", remaining)
            for index in range(len(records)):
                if index not in outcome.failed and index not in outcome.delivered:
                    outcome.failed[index] = self._stale or "no delivery report"
            if outcome.failed:
                self._stale = next(iter(outcome.failed.values()))
            return outcome

    def _produce(
        self, record: OutgoingRecord, callback: Any, outcome: PublishOutcome, index: int
    ) -> None:
        while True:
            try:
                self._producer.produce(
                    record.topic,
                    value=record.value,
                    key=record.key,
                    headers=list(record.headers),
                    on_delivery=callback,
                )
                return
            except BufferError:
                # Local queue full: serve delivery reports to make room, then try again.
                self._producer.poll(0.1)
            except KafkaException as exc:
                outcome.failed[index] = str(exc)
                return

    def close(self) -> None:
        """Flush outstanding records."""
        with self._lock:
            self._producer.flush(10)


class KafkaSubscriber:
    """One consumer-group member; offsets are committed only when asked.

    ``assignments`` and ``revocations`` count the rebalances this member took part in
    (for logs and tests). While paused, partitions assigned by a rebalance are paused
    as they are assigned, so ``poll`` keeps returning nothing until ``resume``.

    Every record is stamped with the id of the topic incarnation it was read from
    (``waypost.bus.identity``). ``commit`` checks the ids first and leaves out records of
    a topic that was created again since; the partitions of such a topic are read again
    from the beginning of the new log. The ids are also checked every
    ``identity_check_s`` and right after the broker was unreachable, so a position left
    beyond the end of a new log does not wait there for good.
    """

    def __init__(
        self,
        config: dict[str, Any],
        topics: list[str],
        describe: Callable[[list[str]], dict[str, str | None]],
        identity_check_s: float = 5.0,
    ) -> None:
        self._consumer = Consumer({**config, "error_cb": self._on_client_error})
        self._cooperative = "cooperative" in str(config.get("partition.assignment.strategy"))
        self._paused = False
        self._closing = False
        self.assignments = 0
        self.revocations = 0
        self.rewinds = 0
        self.identity = TopicIdentity(describe)
        self._identity_check_s = identity_check_s
        self._next_check = time.monotonic() + identity_check_s
        self._consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        self.missing_topics: set[str] = set()

    def _on_client_error(self, error: KafkaError) -> None:
        if error.code() in _SUSPECT:
            self._next_check = min(self._next_check, time.monotonic() + 1.0)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assignments += 1
        if self._cooperative:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
        if not partitions:
            return
        # librdkafka keeps a partition's pause across losing and regaining it: one
        # paused, then lost while this member was paused, comes back paused even if
        # the member resumed meanwhile (and would never be fetched again).
        if self._paused:
            consumer.pause(partitions)
        else:
            consumer.resume(partitions)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Also called for partitions lost without a revocation (a missed session).
        self.revocations += 1
        if partitions and not self._closing:
            log.info(
                "partitions revoked: %s",
                ", ".join(f"{p.topic}[{p.partition}]" for p in partitions),
            )

    def pause(self) -> None:
        """Stop fetching; ``poll`` returns nothing but keeps this member in its group."""
        self._paused = True
        self._consumer.pause(self._consumer.assignment())

    def resume(self) -> None:
        """Fetch again from just after the last record returned."""
        self._paused = False
        self._consumer.resume(self._consumer.assignment())

    def poll(self, max_records: int, timeout_s: float) -> list[ReceivedRecord]:
        """Up to ``max_records`` records, waiting at most ``timeout_s`` for the first."""
        self._keep_identity()
        # consume(n, t) waits the whole timeout unless n records arrive: wait for the
        # first record only, then take what has been fetched already.
        messages = self._consumer.consume(1, timeout_s)
        if messages and max_records > 1:
            messages += self._consumer.consume(max_records - 1, 0)
        if self._paused:
            self._put_back(messages)
            return []
        good: list[Message] = []
        for message in messages:
            error = message.error()
            if error is not None:
                self._on_error(error, message)
            else:
                good.append(message)
        ids = self._topic_ids({message.topic() or "" for message in good})
        return [_record(message, ids) for message in good]

    def _topic_ids(self, topics: set[str]) -> dict[str, str | None]:
        """The id each topic is read under, learning those not seen before."""
        try:
            self.identity.learn(topics)
        except BusError as exc:
            log.warning("cannot look up the ids of %s: %s", ", ".join(sorted(topics)), exc)
        return {topic: self.identity.known(topic) for topic in topics}

    def _keep_identity(self) -> None:
        """Check the assigned topics' ids when due; read recreated topics again."""
        if time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + self._identity_check_s
            topics = {p.topic for p in self._assignment()}
            try:
                self.identity.verify(topics)
            except BusError as exc:
                log.debug("topic ids not checked: %s", exc)
        recreated = self.identity.take_recreated()
        if recreated:
            self._rewind(recreated)

    def _assignment(self) -> list[TopicPartition]:
        try:
            return list(self._consumer.assignment())
        except KafkaException:
            return []

    def _rewind(self, topics: set[str]) -> None:
        """Read this member's partitions of ``topics`` from the start of their new logs,
        and commit that start, so no member resumes from a position of the old log."""
        partitions = [p for p in self._assignment() if p.topic in topics]
        if not partitions:
            return  # not ours (any more): the member that has them rewinds them
        try:
            for partition in partitions:
                self._consumer.seek(
                    TopicPartition(partition.topic, partition.partition, OFFSET_BEGINNING)
                )
            starts = [TopicPartition(p.topic, p.partition, self._log_start(p)) for p in partitions]
            self._consumer.commit(offsets=starts, asynchronous=False)
        except KafkaException as exc:
            log.warning("could not rewind %s yet (will try again): %s", ", ".join(topics), exc)
            self.identity.put_back(topics)
            return
        self.rewinds += 1
        log.warning(
            "reading %s again from the beginning of the new log(s)",
            ", ".join(f"{p.topic}[{p.partition}]" for p in partitions),
        )

    def _log_start(self, partition: TopicPartition) -> int:
        low, _high = self._consumer.get_watermark_offsets(
            TopicPartition(partition.topic, partition.partition), timeout=5
        )
        return max(0, int(low))

    def _put_back(self, messages: list[Message]) -> None:
        """Rewind to records that arrived while paused, so they come after ``resume``.

        A safety net: partitions are paused as they are assigned, and pausing discards
        what was fetched before, so no record is expected here."""
        first: dict[tuple[str, int], int] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                self._on_error(error, message)
                continue
            key = (message.topic() or "", message.partition() or 0)
            first[key] = min(first.get(key, message.offset() or 0), message.offset() or 0)
        for (topic, partition), offset in first.items():
            where = TopicPartition(topic, partition, offset)
            try:
                self._consumer.seek(where)
                self._consumer.pause([where])
            except KafkaException as exc:
                log.warning("cannot rewind %s[%d] to %d: %s", topic, partition, offset, exc)

    def _on_error(self, error: KafkaError, message: Message) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.code() in _MISSING_TOPIC:
            topic = message.topic() or "?"
            if topic not in self.missing_topics:
                log.warning("topic %s does not exist (yet); waiting for provisioning", topic)
            self.missing_topics.add(topic)
            self._next_check = min(self._next_check, time.monotonic() + 1.0)
            return
        log.warning("consumer error: %s", error.str())

    def commit(self, records: Sequence[ReceivedRecord]) -> None:
        """Commit the offsets just past these records, leaving out records of a topic
        incarnation that is no longer the current one (they are read again)."""
        records = self._current(records)
        if not records:
            return
        high: dict[tuple[str, int], int] = {}
        for record in records:
            key = (record.topic, record.partition)
            high[key] = max(high.get(key, -1), record.offset)
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in high.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # A rebalance or a restarted broker: the records may be delivered again,
            # which every handler tolerates (idempotent application).
            log.warning("offset commit failed (records may be redelivered): %s", exc)

    def _current(self, records: Sequence[ReceivedRecord]) -> list[ReceivedRecord]:
        """The records read from the current incarnation of their topic."""
        if not records:
            return []
        try:
            current = self.identity.verify({r.topic for r in records})
        except BusError as exc:
            log.warning("not committing: the topics' ids cannot be checked (%s)", exc)
            return []
        kept = [r for r in records if r.topic_id is not None and r.topic_id == current[r.topic]]
        if len(kept) < len(records):
            log.warning(
                "not committing %d record(s) read from a topic that was deleted or created "
                "again since; they will be read again",
                len(records) - len(kept),
            )
        return kept

    def close(self) -> None:
        """Leave the group."""
        self._closing = True
        self._consumer.close()


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
                if isinstance(error, KafkaError) and error.code() in _MISSING_TOPIC:
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


def _record(message: Message, topic_ids: dict[str, str | None]) -> ReceivedRecord:
    topic = message.topic() or ""
    timestamp_type, timestamp = message.timestamp()
    return ReceivedRecord(
        topic=topic,
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=message.key(),
        value=message.value(),
        headers=_headers(message),
        timestamp_ms=timestamp if timestamp_type else None,
        topic_id=topic_ids.get(topic),
    )


def _headers(message: Message) -> tuple[tuple[str, bytes], ...]:
    """Headers as (name, bytes); a null header value becomes empty bytes."""
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return tuple(
        (name, value if isinstance(value, bytes) else (value or "").encode())
        for name, value in pairs
    )
