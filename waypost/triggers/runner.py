"""`waypost bridge run`: one process running every configured MQTT and NATS bridge.

Each bridge is a thread (``waypost.triggers.mqtt``, ``waypost.triggers.nats``); all
share one Kafka publisher and one ``Gateway``. The bridge needs the broker only, no
database: a goal is durable once Kafka acknowledged its ``goal.submitted`` event, and
the orchestrator's intake makes one workflow of one goal id.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from waypost import service
from waypost.bus.base import Admin, TopicSpec
from waypost.errors import BusError, ConfigError
from waypost.events import default_codec
from waypost.settings import CommonSettings, load
from waypost.topics import Topics
from waypost.triggers.bridge_config import Bridge, credentials, load_bridges
from waypost.triggers.errors import InvalidBridgeFiles
from waypost.triggers.gateway import Gateway
from waypost.triggers.mqtt import MqttBridge
from waypost.triggers.nats import NatsBridge

log = logging.getLogger("waypost.bridge")

SERVICE = service.Service("bridge", database=False)


def bridges_of(paths: Sequence[Path]) -> dict[str, Bridge]:
    """The bridges of these files and directories; ConfigError naming every invalid
    file, field and line."""
    try:
        return load_bridges(paths)
    except InvalidBridgeFiles as exc:
        raise ConfigError(f"invalid bridge configuration:\n{exc}") from None


def messages_counter(registry: CollectorRegistry) -> Counter:
    """Bridged messages by bridge and outcome (``goal`` or ``dead_letter``)."""
    return Counter(
        "waypost_bridge_messages_total",
        "Messages an MQTT or NATS bridge turned into goals or dead letters (a message "
        "delivered again counts again).",
        ["bridge", "outcome"],
        registry=registry,
    )


def ensure_topics(admin: Admin, settings: CommonSettings) -> None:
    """Create the goals topic and its dead-letter topic if missing (as the orchestrator
    does); a broker out of reach is only logged: publishing retries until it is back."""
    topics = Topics(settings.namespace)
    names = [topics.goals, Topics.dlq(topics.goals)]
    specs = [
        TopicSpec(
            name,
            settings.topic_partition_overrides.get(
                topics.short_name(name), settings.topic_partitions
            ),
        )
        for name in names
    ]
    try:
        admin.ensure_topics(specs)
    except BusError as exc:
        log.warning("cannot check the goals topics yet (%s); publishing will retry", exc)


def workers(
    bridges: Mapping[str, Bridge],
    gateway: Gateway,
    stop: threading.Event,
    environ: Mapping[str, str],
) -> dict[str, Callable[[], None]]:
    """One thread body per bridge (ConfigError if a secret's variable is unset)."""
    found: dict[str, Callable[[], None]] = {}
    for name, bridge in sorted(bridges.items()):
        secrets = credentials(bridge, environ)
        if bridge.mqtt is not None:
            found[f"mqtt:{name}"] = MqttBridge(bridge, secrets, gateway, stop).run
        else:
            found[f"nats:{name}"] = NatsBridge(bridge, secrets, gateway, stop).run
    return found


def main(paths: Sequence[Path], settings: CommonSettings | None = None) -> int:
    """Run the bridges of ``paths`` until SIGTERM/SIGINT."""
    settings = settings or load(CommonSettings)
    bridges = bridges_of(paths)  # before anything connects: a wrong file fails at once
    for bridge in bridges.values():
        credentials(bridge, os.environ)  # and so does an unset secret

    def build(process: service.Started) -> dict[str, Callable[[], None]]:
        bus = process.bus()
        ensure_topics(bus.admin(), settings)
        counter = messages_counter(process.telemetry.registry)
        gateway = Gateway(
            publisher=bus.publisher("waypost-bridge"),
            topics=Topics(settings.namespace),
            codec=default_codec(),
            stop=process.stop,
            on_outcome=lambda bridge, outcome: counter.labels(bridge, outcome).inc(),
        )
        log.info("bridges ready: %s", ", ".join(sorted(bridges)))
        return workers(bridges, gateway, process.stop, os.environ)

    return service.run(SERVICE, settings, build)
