"""`waypost bridge`: MQTT and NATS messages become goals (docs/triggers.md, "MQTT and
NATS bridges")."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from waypost.cli.options import check_flag, config_files

_CONFIG_ENV = "WAYPOST_BRIDGES"


@click.group()
def bridge() -> None:
    """MQTT and NATS bridges: messages on topics and subjects become goals."""


@bridge.command(name="run")
@config_files(_CONFIG_ENV)
@check_flag("source, topics or subject, goal type, environment variables its secrets need")
def run(paths: tuple[Path, ...], check: bool) -> None:
    """Subscribe to each bridge's MQTT topic filters (QoS 1, persistent session) or NATS
    JetStream subject (durable consumer) and publish every message as a goal.submitted
    event on the goals topic; a message is acknowledged only once Kafka has the goal. A
    message that cannot be mapped goes to the goals dead-letter topic, original bytes.

    Takes the common settings (WAYPOST_KAFKA_BOOTSTRAP, WAYPOST_NAMESPACE, ...); no
    database. Secrets come from the environment variables the files name.
    """
    from waypost.triggers.runner import bridges_of, main

    if not check:
        sys.exit(main(paths))
    found = bridges_of(paths)
    for name, item in sorted(found.items()):
        if item.mqtt is not None:
            where = f"mqtt {item.mqtt.url} topics {', '.join(item.mqtt.topics)}"
        else:
            assert item.nats is not None
            where = f"nats {item.nats.url} subject {item.nats.subject} (stream {item.nats.stream})"
        needs = ", ".join(sorted(item.secrets().values())) or "none"
        click.echo(f"{name}: {where} -> goal {item.goal.type}, environment variables: {needs}")
    click.echo(f"{len(found)} bridge(s) valid")
