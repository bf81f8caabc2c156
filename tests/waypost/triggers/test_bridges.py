"""MQTT and NATS bridges against real mosquitto and nats-server, publishing to the real
embedded Kafka broker: messages become goal.submitted events with ids derived from the
messages, unmappable ones become dead letters with their original bytes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.waiting import wait_for
from tests.waypost.triggers.brokers import ServerProcess
from tests.waypost.triggers.clients import body, mqtt_publish, nats_publish
from waypost.bus.dead_letters import HEADER_PREFIX
from waypost.bus.kafka import KafkaBus
from waypost.bus.records import ReceivedRecord
from waypost.events import GoalSubmitted, default_codec, new_id
from waypost.settings import CommonSettings
from waypost.topics import Topics
from waypost.triggers.bridge_config import Bridge, Credentials, load_text
from waypost.triggers.gateway import CHANNEL_HEADER, Gateway
from waypost.triggers.messages import goal_id, mqtt_key, nats_key
from waypost.triggers.mqtt import MqttBridge
from waypost.triggers.nats import NatsBridge
from waypost.triggers.runner import ensure_topics

pytestmark = pytest.mark.integration

GOAL = """
    goal:
      type: support.ticket
      input: {subject: "${/subject}", body: "${/text}", customer: "${/customer}"}
"""


class Running:
    """A bridge thread of this test, publishing to this test's namespace."""

    def __init__(self, settings: CommonSettings) -> None:
        self.settings = settings
        self.topics = Topics(settings.namespace)
        self.stop = threading.Event()
        self.bus = KafkaBus(settings.kafka_bootstrap or "", settings)
        ensure_topics(self.bus.admin(), settings)
        self.publisher = self.bus.publisher("test-bridge")
        self.gateway = Gateway(self.publisher, self.topics, default_codec(), self.stop)
        self.threads: list[threading.Thread] = []

    def start(self, run: Callable[[], None]) -> None:
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)
        self.publisher.close()

    def read(self, topic: str, *, expect: int) -> list[ReceivedRecord]:
        """Every record of ``topic`` once at least ``expect`` are there."""
        subscriber = self.bus.subscriber(f"{self.settings.namespace}.r{new_id()[:8]}", [topic], "t")
        records: list[ReceivedRecord] = []
        try:

            def enough() -> bool:
                records.extend(subscriber.poll(500, 0.2))
                return len(records) >= expect

            wait_for(enough, timeout=60, what=f"{expect} record(s) on {topic}")
            records.extend(subscriber.poll(500, 0.5))
        finally:
            subscriber.close()
        return records


@pytest.fixture
def running(make_settings: Callable[..., Any]) -> Iterator[Running]:
    bridges = Running(make_settings(CommonSettings))
    yield bridges
    bridges.close()


def mqtt_bridge(port: int, **extra: str) -> Bridge:
    lines = "".join(f"\n      {key}: {value}" for key, value in extra.items())
    text = f"""
bridges:
  alarms:
    mqtt:
      url: mqtt://127.0.0.1:{port}
      topics: [sensors/+/alarm]
      client_id: bridge-{new_id()[:8]}{lines}
{GOAL}"""
    return load_text(text)["alarms"]


def nats_bridge(port: int) -> Bridge:
    text = f"""
bridges:
  orders:
    nats:
      url: nats://127.0.0.1:{port}
      subject: orders.created
      stream: ORDERS
      create_stream: true
{GOAL}"""
    return load_text(text)["orders"]


def goals_of(records: list[ReceivedRecord]) -> dict[str, GoalSubmitted]:
    codec = default_codec()
    found = {}
    for record in records:
        event = codec.decode(record.value, record.headers)
        assert isinstance(event.payload, GoalSubmitted)
        found[event.id] = event.payload
    return found


def ticket(n: int) -> bytes:
    return body(subject=f"Ticket {n}", text="Charged twice", customer="Dana")


def test_mqtt_messages_become_goals_and_an_unmappable_one_a_dead_letter(
    mosquitto: ServerProcess, running: Running
) -> None:
    bridge = mqtt_bridge(mosquitto.port)
    mqtt = MqttBridge(bridge, Credentials(), running.gateway, running.stop)
    running.start(mqtt.run)
    wait_for(mqtt.subscribed.is_set, timeout=20, what="the bridge's MQTT subscription")
    unmappable = b'{"subject": "no text or customer"}'
    mqtt_publish(mosquitto.port, "sensors/7/alarm", [ticket(1), ticket(2), unmappable, b"\xff"])

    goals = goals_of(running.read(running.topics.goals, expect=2))
    expected = {goal_id("alarms", mqtt_key("sensors/7/alarm", ticket(n), None)): n for n in (1, 2)}
    assert set(goals) == set(expected)
    for gid, n in expected.items():
        assert goals[gid].type == "support.ticket"
        assert goals[gid].input == {
            "subject": f"Ticket {n}",
            "body": "Charged twice",
            "customer": "Dana",
        }
    # Each message is mapped on its own: the two dead letters may arrive in either order.
    letters = sorted(
        running.read(Topics.dlq(running.topics.goals), expect=2),
        key=lambda letter: letter.value != unmappable,
    )
    assert [letter.value for letter in letters] == [unmappable, b"\xff"]
    reasons = [letter.header(HEADER_PREFIX + "reason") for letter in letters]
    assert reasons == [b"invalid", b"undecodable"]
    assert letters[0].header(CHANNEL_HEADER) == b"sensors/7/alarm"
    assert letters[0].header(HEADER_PREFIX + "source-topic") == running.topics.goals.encode()
    assert b"/text" in (letters[0].header(HEADER_PREFIX + "error-message") or b"")


def test_mqtt_sender_id_makes_the_goal_id(mosquitto: ServerProcess, running: Running) -> None:
    bridge = mqtt_bridge(mosquitto.port, id="/event")
    mqtt = MqttBridge(bridge, Credentials(), running.gateway, running.stop)
    running.start(mqtt.run)
    wait_for(mqtt.subscribed.is_set, timeout=20, what="the bridge's MQTT subscription")
    payload = body(event="e-1", subject="s", text="t", customer="c")
    mqtt_publish(mosquitto.port, "sensors/1/alarm", [payload])

    goals = goals_of(running.read(running.topics.goals, expect=1))
    assert set(goals) == {goal_id("alarms", mqtt_key("sensors/1/alarm", payload, "e-1"))}


def test_nats_messages_become_goals_with_stream_identities(
    nats_server: ServerProcess, running: Running
) -> None:
    bridge = nats_bridge(nats_server.port)
    nats = NatsBridge(bridge, Credentials(), running.gateway, running.stop)
    running.start(nats.run)
    wait_for(nats.subscribed.is_set, timeout=20, what="the bridge's JetStream consumer")
    nats_publish(
        nats_server.port,
        "orders.created",
        [ticket(1), ticket(2), b"not json"],
        msg_ids=[None, "order-2", None],
    )

    goals = goals_of(running.read(running.topics.goals, expect=2))
    assert set(goals) == {
        goal_id("orders", nats_key("ORDERS", 1, None)),
        goal_id("orders", nats_key("ORDERS", 2, "order-2")),
    }
    letters = running.read(Topics.dlq(running.topics.goals), expect=1)
    assert [letter.value for letter in letters] == [b"not json"]
    assert letters[0].header(CHANNEL_HEADER) == b"orders.created"
