"""The MQTT side of a bridge (paho-mqtt 2.x): a persistent session, QoS 1, manual acks.

The client keeps one session with the broker (a stable client id; MQTT 5
``clean_start=False`` with a session expiry, or MQTT 3.1.1 ``clean_session=False``), so
QoS 1 messages published while the bridge is away or reconnecting wait in the broker.
Every message is acknowledged (PUBACK) only after ``Gateway.deliver`` says its goal or
dead letter is durable in Kafka. A message not acknowledged when the connection drops
is sent again by the broker in the resumed session; an acknowledgement is sent only on
the connection the message arrived on (a packet id means nothing on another).

paho's network thread only queues messages; this bridge's thread publishes them in
batches, so a slow Kafka never stalls the MQTT keep-alives.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from waypost.events import utcnow
from waypost.triggers.bridge_config import Bridge, Credentials, MqttSource
from waypost.triggers.gateway import Gateway, Route
from waypost.triggers.messages import Incoming

log = logging.getLogger("waypost.bridge")

_BATCH = 100
_POLL_S = 0.5


@dataclass(frozen=True, slots=True)
class _Received:
    connection: int  # which connection it arrived on (acks are per connection)
    mid: int
    qos: int
    message: Incoming


class MqttBridge:
    """Subscribes a bridge's topic filters and turns each message into a goal."""

    def __init__(
        self, bridge: Bridge, credentials: Credentials, gateway: Gateway, stop: threading.Event
    ) -> None:
        assert bridge.mqtt is not None
        self.bridge = bridge
        self.source: MqttSource = bridge.mqtt
        self.route = Route(bridge.name, bridge.mapping(), bridge.mqtt.id)
        self.gateway = gateway
        self.stop = stop
        self.connection = 0
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # set once the broker granted the filters
        self._queue: queue.Queue[_Received] = queue.Queue()
        self._credentials = credentials

    def client(self) -> paho.Client:
        """A paho client for this bridge's session (not yet connected)."""
        v5 = self.source.protocol == "5"
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.source.client_id,
            clean_session=None if v5 else False,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        )
        client.manual_ack_set(True)
        client.reconnect_delay_set(1, 30)
        if self.source.username is not None:
            client.username_pw_set(self.source.username, self._credentials.password)
        if self.source.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def run(self) -> None:
        """Connect (retrying until the broker answers) and deliver messages until
        ``stop`` is set."""
        client = self.client()
        properties = None
        if self.source.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = int(self.source.session_expiry)
        client.connect_async(
            self.source.host,
            self.source.port,
            keepalive=self.source.keepalive,
            clean_start=False if self.source.protocol == "5" else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        client.loop_start()
        try:
            while not self.stop.is_set():
                batch = self._take()
                if batch and self.gateway.deliver(self.route, [r.message for r in batch]):
                    for received in batch:
                        if received.connection == self.connection:
                            client.ack(received.mid, received.qos)
        finally:
            client.disconnect()
            client.loop_stop()

    def _take(self) -> list[_Received]:
        try:
            batch = [self._queue.get(timeout=_POLL_S)]
        except queue.Empty:
            return []
        while len(batch) < _BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.warning(
                "bridge %s: MQTT broker refused the connection: %s", self.bridge.name, reason
            )
            return
        self.connection += 1
        log.info(
            "bridge %s: connected to %s as %s (session %s)",
            self.bridge.name,
            self.source.url,
            self.source.client_id,
            "resumed" if flags.session_present else "new",
        )
        # Subscribing again on a resumed session is harmless; MQTT 5 then skips the
        # retained messages already sent (retain handling 1).
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        if self.source.protocol == "5":
            client.subscribe([(topic, options) for topic in self.source.topics])
        else:
            client.subscribe([(topic, 1) for topic in self.source.topics])
        self.connected.set()

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        refused = [
            topic
            for topic, reason in zip(self.source.topics, reasons, strict=False)
            if reason.is_failure
        ]
        if refused:
            log.error(
                "bridge %s: the broker refused the topic filters %s", self.bridge.name, refused
            )
            return
        log.info("bridge %s: subscribed to %s", self.bridge.name, ", ".join(self.source.topics))
        self.subscribed.set()

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: Any,
        _flags: paho.DisconnectFlags,
        reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self.stop.is_set():
            log.warning(
                "bridge %s: disconnected from %s (%s); reconnecting",
                self.bridge.name,
                self.source.url,
                reason,
            )

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        received_at: datetime = utcnow()
        message = Incoming(
            bridge=self.bridge.name,
            channel=msg.topic,
            payload=bytes(msg.payload),
            received_at=received_at,
            variables={"topic": msg.topic},
        )
        self._queue.put(_Received(self.connection, msg.mid, msg.qos, message))
