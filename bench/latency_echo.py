"""The raw round trip's middle hop, for latency: one record at a time.

Like bench/raw_echo.py (plain confluent-kafka, Waypost's client settings: idempotent
producer, acks=all, linger.ms 5, flush, then a synchronous commit) but it takes each
record as soon as it arrives: ``Consumer.consume(N, timeout)`` waits the whole timeout
unless N records arrive, which is right for throughput and wrong for latency.

Usage: python -m bench.latency_echo BOOTSTRAP SOURCE TARGET GROUP FETCH_WAIT_MAX_MS
"""

from __future__ import annotations

import signal
import sys

from confluent_kafka import Consumer, Producer


def main(bootstrap: str, source: str, target: str, group: str, fetch_wait_ms: str) -> None:
    """Echo every record of ``source`` to ``target`` until SIGTERM."""
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 3000,
            "heartbeat.interval.ms": 750,
            "fetch.wait.max.ms": int(fetch_wait_ms),
        }
    )
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5}
    )
    consumer.subscribe([source])
    while running:
        message = consumer.poll(0.5)
        if message is None or message.error() is not None:
            continue
        producer.produce(target, key=message.key(), value=message.value())
        producer.flush()
        consumer.commit(message=message, asynchronous=False)
    consumer.close()


if __name__ == "__main__":
    main(*sys.argv[1:6])
