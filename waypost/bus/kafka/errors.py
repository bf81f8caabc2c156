"""librdkafka's log lines, and the client errors Waypost tells apart."""

from __future__ import annotations

import logging
import re
import threading
import time

from confluent_kafka import KafkaError


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
MISSING_TOPIC = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC}
# Client errors after which a consumer checks its topics' identity at once: the broker
# may have come back without its data.
SUSPECT = {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, *MISSING_TOPIC}
