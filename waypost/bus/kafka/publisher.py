"""The idempotent producer behind ``Publisher``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from waypost.bus.base import PublishOutcome
from waypost.bus.records import OutgoingRecord

log = logging.getLogger(__name__)


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
