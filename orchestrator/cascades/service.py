"""Wiring the cascade consumer into the orchestrator process (orchestrator/service/main.py)."""

from __future__ import annotations

import threading

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from orchestrator.cascades.consumer import CascadeConsumer, TriggerDecoder
from orchestrator.cascades.events import TriggerEvent
from orchestrator.cascades.matching import Triggers
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.publishing.records import Outgoing
from waypost.bus.base import Bus, TopicSpec
from waypost.bus.loop import ConsumerLoop
from waypost.errors import BusError
from waypost.events import utcnow
from waypost.outages import Outages
from waypost.settings import OrchestratorSettings
from waypost.topics import Topics


def group(topics: Topics) -> str:
    """The consumer group every orchestrator's cascade consumer joins."""
    return f"{topics.namespace}.cascades"


def topic_specs(
    playbooks: PlaybookRegistry, topics: Topics, settings: OrchestratorSettings
) -> list[TopicSpec]:
    """The trigger topics and their dead-letter topics."""
    names = Triggers(playbooks, topics).topics
    return [
        TopicSpec(
            name,
            settings.topic_partition_overrides.get(
                topics.short_name(name), settings.topic_partitions
            ),
        )
        for name in [*names, *(topics.dlq(name) for name in names)]
    ]


def consumer_loop(
    settings: OrchestratorSettings,
    *,
    playbooks: PlaybookRegistry,
    bus: Bus,
    engine: Engine,
    outgoing: Outgoing,
    stop: threading.Event,
    outages: Outages,
) -> ConsumerLoop[TriggerEvent | None] | None:
    """The loop reading every trigger topic, or None when no playbook has triggers."""
    topics = outgoing.topics
    triggers = Triggers(playbooks, topics)
    if not triggers.topics:
        return None
    cascades = CascadeConsumer(
        engine=engine,
        triggers=triggers,
        outgoing=outgoing,
        publisher=OutboxPublisher(engine, bus.publisher("cascades")),
        clock=utcnow,
        max_depth=settings.cascade_max_depth,
    )
    return ConsumerLoop(
        subscriber=bus.subscriber(group(topics), triggers.topics, "cascades"),
        dead_letters=bus.publisher("cascades-dlq"),
        handler=cascades.handle,
        group=group(topics),
        codec=TriggerDecoder(),
        stop=stop,
        batch_size=settings.consume_batch_size,
        max_local_attempts=settings.consumer_max_attempts,
        transient=(OperationalError, BusError),
        outages=outages,
    )
