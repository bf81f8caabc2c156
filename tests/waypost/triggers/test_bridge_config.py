"""Bridge files (pure): what a valid file gives, and every error naming field and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from waypost.errors import ConfigError
from waypost.triggers.bridge_config import credentials, load_bridges, load_text
from waypost.triggers.errors import BridgeConfigError, InvalidBridgeFiles

VALID = """
bridges:
  alarms:
    mqtt:
      url: mqtt://mqtt.example.com
      topics: [sensors/+/alarm, plant/#]
      username: bridge
      password: ${MQTT_PASSWORD}
      id: /event_id
    goal:
      type: support.ticket
      input: {subject: "Alarm on ${topic}", body: "${/text}"}
  orders:
    nats:
      url: nats://nats.example.com:4222
      subject: orders.created
      stream: ORDERS
      token: ${NATS_TOKEN}
      ack_wait: 1m
    goal: {type: billing.order, input: {order: "${/}", seq: "${sequence}"}}
"""


def test_a_valid_file_gives_each_bridge_with_its_defaults() -> None:
    bridges = load_text(VALID, source="b.yaml")
    alarms, orders = bridges["alarms"], bridges["orders"]
    assert alarms.mqtt is not None
    assert (alarms.mqtt.host, alarms.mqtt.port, alarms.mqtt.tls) == (
        "mqtt.example.com",
        1883,
        False,
    )
    assert alarms.mqtt.client_id == "waypost-alarms"
    assert alarms.mqtt.protocol == "5"
    assert alarms.secrets() == {"password": "MQTT_PASSWORD"}
    assert orders.nats is not None
    assert orders.nats.durable == "waypost-orders"
    assert orders.nats.ack_wait == 60.0
    assert orders.mapping().goal_type == "billing.order"
    assert orders.source == "b.yaml"


def test_secrets_are_read_from_the_environment_and_never_shown() -> None:
    alarms = load_text(VALID)["alarms"]
    found = credentials(alarms, {"MQTT_PASSWORD": "s3cret"})
    assert found.password == "s3cret"
    assert "s3cret" not in repr(found)
    with pytest.raises(ConfigError, match="MQTT_PASSWORD, which is not set"):
        credentials(alarms, {})


@pytest.mark.parametrize(
    ("text", "field", "line", "message"),
    [
        (
            "bridges:\n  a:\n    mqtt: {url: 'mqtt://h', topics: [t], password: hunter2}\n"
            "    goal: {type: x.y}\n",
            "bridges.a.mqtt.password",
            3,
            "never the secret itself",
        ),
        (
            "bridges:\n  a:\n    goal: {type: x.y}\n",
            "bridges.a",
            3,
            "exactly one of mqtt and nats",
        ),
        (
            "bridges:\n  a:\n    mqtt: {url: 'mqtt://h', topics: ['a/b#']}\n"
            "    goal: {type: x.y}\n",
            "bridges.a.mqtt.topics",
            3,
            "not an MQTT topic filter",
        ),
        (
            "bridges:\n  a:\n    mqtt: {url: 'mqtt://u:p@h', topics: [t]}\n    goal: {type: x.y}\n",
            "bridges.a.mqtt.url",
            3,
            "cannot hold credentials",
        ),
        (
            "bridges:\n  a:\n    nats: {url: 'nats://h', subject: s, stream: S}\n"
            "    goal: {type: x.y, input: {t: '${topic}'}}\n",
            "bridges.a",
            3,
            "${topic}, which this bridge does not provide",
        ),
        (
            "bridges:\n  Bad:\n    goal: {type: x.y}\n",
            "bridges.Bad",
            3,
            "is not a bridge name",
        ),
    ],
)
def test_problems_name_their_field_and_line(text: str, field: str, line: int, message: str) -> None:
    with pytest.raises(BridgeConfigError) as caught:
        load_text(text, source="f.yaml")
    problems = caught.value.problems
    assert [(p.field, p.line) for p in problems] == [(field, line)], problems
    assert message in problems[0].message
    assert "f.yaml" in str(caught.value)


def test_files_and_directories_are_read_and_duplicates_refused(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(VALID)
    (tmp_path / "two.yml").write_text(VALID.replace("alarms:", "other:"))
    with pytest.raises(InvalidBridgeFiles, match="'orders' is also defined in"):
        load_bridges([tmp_path])
    (tmp_path / "two.yml").unlink()
    assert sorted(load_bridges([tmp_path])) == ["alarms", "orders"]
    with pytest.raises(InvalidBridgeFiles, match="no bridge is configured"):
        load_bridges([])
