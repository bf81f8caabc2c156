"""Sending test messages to the real brokers as any outside client would."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from typing import Any

import nats
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.waiting import wait_for


def mqtt_publish(port: int, topic: str, payloads: Sequence[bytes], *, timeout: float = 30) -> None:
    """Publish each payload with QoS 1 and wait for the broker's PUBACK of each; a
    publish the broker did not acknowledge (it was restarting) is sent again."""
    for payload in payloads:

        def sent(payload: bytes = payload) -> bool:
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4()}")
            try:
                client.connect("127.0.0.1", port, keepalive=10)
            except OSError:
                return False
            client.loop_start()
            try:
                info = client.publish(topic, payload, qos=1)
                info.wait_for_publish(timeout=5)
                return info.is_published()
            except (RuntimeError, ValueError):
                return False
            finally:
                client.disconnect()
                client.loop_stop()

        wait_for(sent, timeout=timeout, interval=0.2, what=f"PUBACK of a message on {topic}")


def nats_publish(
    port: int,
    subject: str,
    payloads: Sequence[bytes],
    *,
    msg_ids: Sequence[str | None] | None = None,
    timeout: float = 30,
) -> None:
    """Publish each payload to JetStream and wait for the stream's ack of each (sent
    again while the server restarts)."""
    ids = list(msg_ids) if msg_ids is not None else [None] * len(payloads)

    async def run() -> None:
        client = await nats.connect(
            f"nats://127.0.0.1:{port}", max_reconnect_attempts=-1, reconnect_time_wait=0.2
        )
        js = client.jetstream()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            for payload, msg_id in zip(payloads, ids, strict=True):
                headers = {"Nats-Msg-Id": msg_id} if msg_id else None
                while True:
                    try:
                        await js.publish(subject, payload, headers=headers, timeout=2)
                        break
                    except (nats.errors.Error, TimeoutError):
                        if loop.time() > deadline:
                            raise
                        await asyncio.sleep(0.2)
        finally:
            await client.close()

    asyncio.run(run())


def body(**fields: Any) -> bytes:
    """A JSON payload."""
    return json.dumps(fields).encode()
