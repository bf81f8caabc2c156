"""`waypost bridge run` against a real mosquitto and a real nats-server: a goal published
to each completes a workflow, and a broker restart while messages flow loses no message
the broker acknowledged (each becomes exactly one workflow)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.e2e.conftest import Platform
from tests.waiting import wait_for
from tests.waypost.triggers.brokers import ServerProcess, mosquitto, nats_server
from tests.waypost.triggers.clients import body, mqtt_publish, nats_publish
from waypost.triggers.messages import goal_id, mqtt_key, nats_key

__all__ = ["mosquitto", "nats_server"]  # fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOPIC = "plant/line-1/alarm"
SUBJECT = "orders.created"


def bridge_file(tmp_path: Path, *, mqtt_port: int | None, nats_port: int | None) -> Path:
    """Bridges mapping {"text": ...} messages onto test.echo goals."""
    goal = '    goal: {type: test.echo, input: {text: "${/text}", via: "${bridge}"}}\n'
    entries = ""
    if mqtt_port is not None:
        entries += (
            "  plant:\n    mqtt:\n"
            f"      url: mqtt://127.0.0.1:{mqtt_port}\n"
            "      topics: [plant/+/alarm]\n      client_id: waypost-e2e-plant\n" + goal
        )
    if nats_port is not None:
        entries += (
            "  orders:\n    nats:\n"
            f"      url: nats://127.0.0.1:{nats_port}\n"
            f"      subject: {SUBJECT}\n      stream: ORDERS\n      create_stream: true\n"
            "      ack_wait: 5s\n" + goal
        )
    path = tmp_path / "bridges.yaml"
    path.write_text("bridges:\n" + entries)
    return path


def start(platform: Platform, config: Path, *ready: str) -> None:
    """Orchestrator, agents and `waypost bridge run`, until the bridge's log says each
    of ``ready`` (an MQTT broker keeps nothing for a session before it subscribed)."""
    platform.start_orchestrator()
    platform.start_agents()
    platform.start("bridge", "bridge", "run", "--config", str(config))
    log = platform.logs / "bridge.log"

    def said() -> bool:
        found = log.read_text(errors="replace") if log.exists() else ""
        return all(line in found for line in ready)

    wait_for(said, timeout=60, interval=0.2, what=f"the bridge's log to say {ready}")


MQTT_READY = "bridge plant: subscribed to"
NATS_READY = "bridge orders: reading"


def completed(platform: Platform, ids: list[str], *, timeout: float = 120) -> None:
    """Wait until every workflow of ``ids`` completed."""

    def done() -> bool:
        return platform.statuses(ids).get("completed", 0) == len(ids)

    wait_for(done, timeout=timeout, interval=0.5, what=f"{len(ids)} completed workflow(s)")


def workflow_count(platform: Platform) -> int:
    with platform.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM workflows")).scalar_one())


def test_goals_published_to_mosquitto_and_nats_complete(
    platform: Platform, mosquitto: ServerProcess, nats_server: ServerProcess, tmp_path: Path
) -> None:
    config = bridge_file(tmp_path, mqtt_port=mosquitto.port, nats_port=nats_server.port)
    start(platform, config, MQTT_READY, NATS_READY)
    mqtt_publish(mosquitto.port, TOPIC, [body(text="from mqtt")])
    nats_publish(nats_server.port, SUBJECT, [body(text="from nats")])

    mqtt_goal = goal_id("plant", mqtt_key(TOPIC, body(text="from mqtt"), None))
    nats_goal = goal_id("orders", nats_key("ORDERS", 1, None))
    completed(platform, [mqtt_goal, nats_goal])
    for workflow_id, via in ((mqtt_goal, "plant"), (nats_goal, "orders")):
        state = platform.workflow(workflow_id)
        assert state is not None
        assert state.type == "test.echo"
        assert dict(state.input)["via"] == via
    assert workflow_count(platform) == 2


def flow_through_restart(publish: Callable[[int], None], server: ServerProcess, count: int) -> None:
    """Publish messages 0..count-1 in a thread (each acknowledged by the broker before
    the next) and restart ``server`` once a third of them are out."""
    published = threading.Semaphore(0)
    failed: list[BaseException] = []

    def produce() -> None:
        try:
            for n in range(count):
                publish(n)
                published.release()
        except BaseException as exc:  # reported by the test below
            failed.append(exc)
            published.release()

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    for _ in range(count // 3):
        assert published.acquire(timeout=60)
    server.restart()
    producer.join(120)
    assert not producer.is_alive(), "the publisher did not finish"
    assert not failed, failed


def test_a_mosquitto_restart_loses_no_acknowledged_message(
    platform: Platform, mosquitto: ServerProcess, tmp_path: Path
) -> None:
    start(platform, bridge_file(tmp_path, mqtt_port=mosquitto.port, nats_port=None), MQTT_READY)
    count = 30
    payloads = [body(text=f"alarm {n}") for n in range(count)]

    flow_through_restart(
        lambda n: mqtt_publish(mosquitto.port, TOPIC, [payloads[n]], timeout=60),
        mosquitto,
        count,
    )

    ids = [goal_id("plant", mqtt_key(TOPIC, payload, None)) for payload in payloads]
    completed(platform, ids, timeout=180)
    assert workflow_count(platform) == count  # exactly one workflow per message


def test_a_nats_server_restart_loses_no_acknowledged_message(
    platform: Platform, nats_server: ServerProcess, tmp_path: Path
) -> None:
    start(platform, bridge_file(tmp_path, mqtt_port=None, nats_port=nats_server.port), NATS_READY)
    count = 30
    # The publisher's own id: a publish sent again after a lost ack is one message.
    flow_through_restart(
        lambda n: nats_publish(
            nats_server.port, SUBJECT, [body(text=f"order {n}")], msg_ids=[f"o-{n}"], timeout=60
        ),
        nats_server,
        count,
    )

    ids = [goal_id("orders", nats_key("ORDERS", 0, f"o-{n}")) for n in range(count)]
    completed(platform, ids, timeout=180)
    assert workflow_count(platform) == count
