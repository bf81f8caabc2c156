"""The dead-letter indexer: mirrors every ``<namespace>.*.dlq`` topic into PostgreSQL.

It subscribes by pattern, so dead-letter topics created later (a new capability, a
replay ``--to`` a new topic) are picked up at the next metadata refresh. Each record is
stored with its key, value and headers byte for byte and the ``waypost-dlq-*`` headers
parsed into columns; a record stored before (same bytes) is skipped, so reading a topic
again after a rebalance or a broker restart stores nothing twice. Offsets are committed
after the rows are, so a crash re-reads rather than loses.

Its own failures (a record it cannot store after its attempts) are dead-lettered like
any consumer's, to ``<dead-letter topic>.dlq``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Span
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from orchestrator.dead_letters.records import index_row
from orchestrator.store import dead_letters
from waypost import service
from waypost.bus.base import Bus
from waypost.bus.loop import ConsumerLoop, Received
from waypost.bus.records import Headers, ReceivedRecord
from waypost.errors import BusError
from waypost.outages import Outages
from waypost.settings import IndexerSettings, load
from waypost.telemetry import NO_TRACING, Tracing
from waypost.topics import DLQ_SUFFIX, Topics

log = logging.getLogger(__name__)


class RawRecords:
    """The indexer takes records as they are: nothing to decode, nothing to refuse."""

    def decode(self, value: bytes | None, headers: Headers) -> None:
        return None


def dead_letter_pattern(topics: Topics) -> str:
    """The subscription pattern of every dead-letter topic of the installation."""
    return f"^{re.escape(topics.namespace)}\\..*{re.escape(DLQ_SUFFIX)}$"


def group(topics: Topics) -> str:
    """The indexers' consumer group."""
    return f"{topics.namespace}.dlq-indexer"


@dataclass
class Indexer:
    """Stores a batch of dead letters in one transaction."""

    engine: Engine
    topics: Topics
    indexed: int = 0
    counter: Counter | None = None  # waypost_dead_letters_indexed_total
    tracing: Tracing = NO_TRACING

    def handle(self, deliveries: Sequence[Received[None]]) -> None:
        """Store a batch of dead letters (each a span in its message's trace)."""
        rows = [index_row(d.record, self.topics) for d in deliveries]
        spans = [self._span(d.record, row) for d, row in zip(deliveries, rows, strict=True)]
        try:
            with self.engine.begin() as conn:
                new = dead_letters.index_new(conn, rows=rows)
        finally:
            for span in spans:
                span.end()
        added = len(new)
        self.indexed += added
        if self.counter is not None:
            for topic, error_class in new:
                self.counter.labels(topic, error_class).inc()
        if added:
            log.info("indexed %d dead letter(s) (%d already known)", added, len(rows) - added)

    def _span(self, record: ReceivedRecord, row: dict[str, Any]) -> Span:
        traceparent = record.header("traceparent")
        tracestate = record.header("tracestate")
        return self.tracing.start_processing(
            record.topic,
            traceparent=traceparent.decode(errors="replace") if traceparent else None,
            tracestate=tracestate.decode(errors="replace") if tracestate else None,
            attributes={
                "messaging.consumer.group.name": group(self.topics),
                "messaging.destination.partition.id": str(record.partition),
                "messaging.kafka.offset": record.offset,
                "waypost.dead_letter.source_topic": row.get("source_topic"),
                "waypost.dead_letter.reason": row.get("reason"),
                "waypost.dead_letter.error_class": row.get("error_class"),
                "waypost.workflow.id": row.get("workflow_id"),
                "waypost.task.id": row.get("task_id"),
            },
        )


def indexed_counter(registry: CollectorRegistry) -> Counter:
    """Dead letters indexed (new ones only), by dead-letter topic and error class."""
    return Counter(
        "waypost_dead_letters_indexed_total",
        "Dead letters the indexer stored (each once), by dead-letter topic and error class.",
        ["topic", "error_class"],
        registry=registry,
    )


def consumer(
    settings: IndexerSettings,
    *,
    bus: Bus,
    engine: Engine,
    stop: threading.Event,
    registry: CollectorRegistry | None = None,
    tracing: Tracing = NO_TRACING,
    outages: Outages | None = None,
) -> ConsumerLoop[None]:
    """The indexer's consumer loop, ready to run."""
    topics = Topics(settings.namespace)
    counter = indexed_counter(registry) if registry is not None else None
    indexer = Indexer(engine, topics, counter=counter, tracing=tracing)
    return ConsumerLoop(
        subscriber=bus.subscriber(group(topics), [dead_letter_pattern(topics)], "dlq-indexer"),
        dead_letters=bus.publisher("dlq-indexer-dlq"),
        handler=indexer.handle,
        group=group(topics),
        codec=RawRecords(),
        stop=stop,
        batch_size=settings.dlq_index_batch_size,
        max_local_attempts=settings.consumer_max_attempts,
        transient=(OperationalError, BusError),
        outages=outages or Outages(),
    )


SERVICE = service.Service("indexer")


def main(settings: IndexerSettings | None = None) -> int:
    """Run the indexer until SIGTERM/SIGINT."""
    settings = settings or load(IndexerSettings)

    def build(process: service.Started) -> dict[str, Callable[[], None]]:
        loop = consumer(
            settings,
            bus=process.bus(),
            engine=process.engine,
            stop=process.stop,
            registry=process.telemetry.registry,
            tracing=process.telemetry.tracing,
            outages=process.outages,
        )
        log.info("dead-letter indexer ready: %s", dead_letter_pattern(Topics(settings.namespace)))
        return {"indexer": loop.run}

    return service.run(SERVICE, settings, build)
