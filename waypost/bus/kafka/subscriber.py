"""The consumer-group member behind ``Subscriber``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from waypost.bus.identity import TopicIdentity
from waypost.bus.kafka.errors import MISSING_TOPIC, SUSPECT
from waypost.bus.records import ReceivedRecord
from waypost.errors import BusError

log = logging.getLogger(__name__)


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

    A member can also be left without partitions for good: the embedded broker may keep
    a member that rejoined while its topics were missing (a broker restarted empty)
    without partitions after they are created again. So after such an upheaval (the
    broker unreachable, a topic missing or created again), a member that owned nothing
    for ``stranded_after_s`` while its topics held unread records and its group's
    committed offsets did not move (no other member reads them) leaves and joins its
    group again (``rejoins`` counts it). In steady state a member idle because others
    own every partition is left alone.
    """

    def __init__(
        self,
        config: dict[str, Any],
        topics: list[str],
        describe: Callable[[list[str]], dict[str, str | None]],
        identity_check_s: float = 5.0,
        stranded_after_s: float = 30.0,
    ) -> None:
        self._consumer = Consumer({**config, "error_cb": self._on_client_error})
        self._cooperative = "cooperative" in str(config.get("partition.assignment.strategy"))
        self._paused = False
        self._closing = False
        self.assignments = 0
        self.revocations = 0
        self.rewinds = 0
        self.rejoins = 0
        self.identity = TopicIdentity(describe)
        self._identity_check_s = identity_check_s
        self._next_check = time.monotonic() + identity_check_s
        self._topics = list(topics)
        self._stranded = StrandedWatch(stranded_after_s)
        self._subscribe()
        self.missing_topics: set[str] = set()

    def _subscribe(self) -> None:
        self._consumer.subscribe(self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_client_error(self, error: KafkaError) -> None:
        if error.code() in SUSPECT:
            self._next_check = min(self._next_check, time.monotonic() + 1.0)
            self._stranded.arm()

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
            try:
                current = self.identity.verify(self._topics)
            except BusError as exc:
                log.debug("topic ids not checked: %s", exc)
            else:
                self._watch_stranded(current)
        recreated = self.identity.take_recreated()
        if recreated:
            self._stranded.arm()
            self._rewind(recreated)

    def _watch_stranded(self, topic_ids: dict[str, str | None]) -> None:
        """Rejoin the group if this member has been left without partitions (see the
        class docstring)."""
        if not all(topic_ids.values()):
            self._stranded.arm()  # missing now: judged once they are back
            return
        if self._assignment():
            self._stranded.reset()
            return
        if not self._stranded.due(time.monotonic(), self._group_offsets):
            return
        log.warning(
            "this member has owned no partition of %s for %.0f s while records wait unread "
            "and no member commits: leaving and joining its group again",
            ", ".join(self._topics),
            self._stranded.after_s,
        )
        try:
            self._consumer.unsubscribe()
            self._subscribe()
        except KafkaException as exc:
            log.warning("could not rejoin the group (will try again): %s", exc)
            return
        self.rejoins += 1

    def _group_offsets(self) -> tuple[tuple[int, int], ...] | None:
        """(committed, log end) of every partition of the subscribed topics, or None
        when the broker cannot tell."""
        try:
            partitions = [
                TopicPartition(topic, number)
                for topic in self._topics
                for number in sorted(
                    self._consumer.list_topics(topic, timeout=5).topics[topic].partitions
                )
            ]
            committed = self._consumer.committed(partitions, timeout=5)
            ends = [
                self._consumer.get_watermark_offsets(p, timeout=5, cached=False)[1]
                for p in partitions
            ]
        except (KafkaException, KeyError):
            return None
        return tuple((max(0, c.offset), int(end)) for c, end in zip(committed, ends, strict=True))

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
        if error.code() in MISSING_TOPIC:
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


class StrandedWatch:
    """When a member without partitions should rejoin: once armed (by an upheaval), after
    ``after_s`` of owning nothing during which its group's committed offsets stayed put
    below the log ends."""

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self._armed = False
        self._since: float | None = None
        self._offsets: tuple[tuple[int, int], ...] | None = None

    def arm(self) -> None:
        """The broker or a topic changed under the member: watch until it owns some."""
        self._armed = True

    def reset(self) -> None:
        """The member owns partitions: nothing to watch."""
        self._armed = False
        self._since = None
        self._offsets = None

    def due(self, now: float, offsets: Callable[[], tuple[tuple[int, int], ...] | None]) -> bool:
        """Whether to rejoin now (``offsets``: (committed, log end) per partition)."""
        if not self._armed:
            return False
        if self._since is None:
            self._since, self._offsets = now, offsets()
            return False
        if now - self._since < self.after_s:
            return False
        current = offsets()
        waiting = current is not None and any(end > done for done, end in current)
        committing = _committed(current) != _committed(self._offsets)
        self._since, self._offsets = now, current
        # Another member commits (it owns them), or nothing is unread: look again later.
        return waiting and not committing


def _committed(offsets: tuple[tuple[int, int], ...] | None) -> tuple[int, ...] | None:
    return None if offsets is None else tuple(done for done, _end in offsets)


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
