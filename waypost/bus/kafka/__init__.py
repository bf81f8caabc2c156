"""The Kafka bus: the only package in Waypost that creates confluent-kafka clients.

Producers are idempotent with ``acks=all`` (``publisher``); consumers commit manually
after handling and never commit a record of a topic that was created again since
(``subscriber``); clients never ask the broker to auto-create topics (``admin``:
provisioning is explicit). ``KafkaBus`` configures every client from the settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from waypost.bus.kafka.admin import KafkaAdmin
from waypost.bus.kafka.errors import client_log
from waypost.bus.kafka.publisher import KafkaPublisher
from waypost.bus.kafka.subscriber import KafkaSubscriber
from waypost.settings import CommonSettings

__all__ = ["KafkaAdmin", "KafkaBus", "KafkaPublisher", "KafkaSubscriber"]


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
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": self._settings.kafka_linger_ms,
            # Undelivered records are retried by their owner (outbox relay, agent retry);
            # a shorter timeout hands them back sooner when a producer is stuck.
            "message.timeout.ms": 10000,
            **self._base(client_id),  # WAYPOST_KAFKA_CLIENT_CONFIG may change the above
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
