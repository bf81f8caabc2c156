"""The raw baseline's middle hop: consume from one topic, produce to another, commit.

Plain confluent-kafka with the same client settings Waypost uses (idempotent producer,
acks=all, manual commits after the produced records are flushed), run as its own process
like an agent worker.
"""

from __future__ import annotations

import signal
import sys

from confluent_kafka import Consumer, Producer


def main(bootstrap: str, source: str, target: str, group: str) -> None:
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
            "fetch.wait.max.ms": 100,
        }
    )
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5}
    )
    consumer.subscribe([source])
    while running:
        messages = [m for m in consumer.consume(500, 0.5) if m.error() is None]
        for message in messages:
            producer.produce(
                target, key=message.key(), value=message.value(), headers=message.headers()
            )
        if messages:
            producer.flush()
            consumer.commit(asynchronous=False)
    consumer.close()


if __name__ == "__main__":
    main(*sys.argv[1:5])
