"""The NATS side of a bridge (nats-py): a JetStream durable pull consumer, explicit acks.

Core NATS delivers a message once, to whoever listens at that moment, and cannot deliver
it again; so a bridge reads a JetStream stream through a durable consumer (its own name,
``durable``), which remembers what was acknowledged across restarts of the bridge and of
the server. Messages are fetched in batches; each is acknowledged only after
``Gateway.deliver`` says its goal or dead letter is durable in Kafka. A message not
acknowledged within ``ack_wait`` is delivered again (the same stream sequence, so the
same goal id). Several bridge processes with the same file share the consumer's
messages.

With ``create_stream: true`` the bridge creates the stream (file storage, the one
subject) if it does not exist; otherwise the stream must exist already.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from waypost.events import utcnow
from waypost.triggers.bridge_config import Bridge, Credentials, NatsSource
from waypost.triggers.gateway import Gateway, Route
from waypost.triggers.messages import Incoming, nats_key

log = logging.getLogger("waypost.bridge")

MSG_ID_HEADER = "Nats-Msg-Id"
_FETCH_S = 1.0
_RETRY_S = 1.0


class NatsBridge:
    """Reads a bridge's JetStream subject and turns each message into a goal."""

    def __init__(
        self, bridge: Bridge, credentials: Credentials, gateway: Gateway, stop: threading.Event
    ) -> None:
        assert bridge.nats is not None
        self.bridge = bridge
        self.source: NatsSource = bridge.nats
        self.route = Route(bridge.name, bridge.mapping())
        self.gateway = gateway
        self.stop = stop
        self.subscribed = threading.Event()
        self._credentials = credentials

    def run(self) -> None:
        """Connect (retrying until the server answers) and deliver messages until
        ``stop`` is set."""
        asyncio.run(self._run())

    async def _run(self) -> None:
        client = await self._connect()
        if client is None:
            return
        try:
            subscription = None
            while subscription is None and not self.stop.is_set():
                try:
                    subscription = await self._subscribe(client.jetstream())
                except (TimeoutError, NatsError) as exc:
                    log.warning(
                        "bridge %s: cannot bind the JetStream consumer yet (%s); retrying",
                        self.bridge.name,
                        exc or type(exc).__name__,
                    )
                    await asyncio.sleep(_RETRY_S)
            self.subscribed.set()
            while subscription is not None and not self.stop.is_set():
                await self._next_batch(client, subscription)
        finally:
            await client.close()

    async def _connect(self) -> NatsClient | None:
        options: dict[str, Any] = {
            "servers": [self.source.url],
            "name": f"waypost-bridge-{self.bridge.name}",
            "max_reconnect_attempts": -1,  # forever: the broker comes back
            "reconnect_time_wait": 1,
            "connect_timeout": 5,
        }
        if self.source.user is not None:
            options["user"] = self.source.user
            options["password"] = self._credentials.password
        if self._credentials.token is not None:
            options["token"] = self._credentials.token
        while not self.stop.is_set():
            try:
                client: NatsClient = await nats.connect(**options)
                log.info("bridge %s: connected to %s", self.bridge.name, self.source.url)
                return client
            except (TimeoutError, NatsError, OSError) as exc:
                log.warning(
                    "bridge %s: cannot reach %s (%s); retrying",
                    self.bridge.name,
                    self.source.url,
                    exc or type(exc).__name__,
                )
                await asyncio.sleep(_RETRY_S)
        return None

    async def _subscribe(self, js: JetStreamContext) -> JetStreamContext.PullSubscription:
        source = self.source
        if source.create_stream:
            try:
                await js.stream_info(source.stream)
            except NotFoundError:
                await js.add_stream(
                    StreamConfig(
                        name=source.stream, subjects=[source.subject], storage=StorageType.FILE
                    )
                )
                log.info("bridge %s: created stream %s", self.bridge.name, source.stream)
        config = ConsumerConfig(
            durable_name=source.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=source.ack_wait,
            max_ack_pending=source.batch * 4,
        )
        subscription = await js.pull_subscribe(
            source.subject, durable=source.durable, stream=source.stream, config=config
        )
        log.info(
            "bridge %s: reading %s from stream %s as consumer %s",
            self.bridge.name,
            source.subject,
            source.stream,
            source.durable,
        )
        return subscription

    async def _next_batch(
        self, client: NatsClient, subscription: JetStreamContext.PullSubscription
    ) -> None:
        try:
            messages = await subscription.fetch(self.source.batch, timeout=_FETCH_S)
        except (NatsTimeout, TimeoutError):
            return  # nothing new
        except (NatsError, OSError) as exc:
            log.warning(
                "bridge %s: fetch failed (%s: %s); retrying",
                self.bridge.name,
                type(exc).__name__,
                exc,
            )
            await asyncio.sleep(_RETRY_S)
            return
        incoming = [self._incoming(message) for message in messages]
        # Kafka's acknowledgement is waited for in a thread: this loop keeps NATS alive.
        durable = await asyncio.to_thread(self.gateway.deliver, self.route, incoming)
        if not durable:
            return  # stopping: unacknowledged, so delivered again after ack_wait
        try:
            for message in messages:
                await message.ack()
            await client.flush(timeout=5)
        except (TimeoutError, NatsError) as exc:
            # Not acknowledged: delivered again after ack_wait, to the same goal ids.
            log.warning("bridge %s: acknowledgement failed (%s)", self.bridge.name, exc)

    def _incoming(self, message: Msg) -> Incoming:
        meta = message.metadata
        msg_id = (message.headers or {}).get(MSG_ID_HEADER) or None
        sequence = meta.sequence.stream
        return Incoming(
            bridge=self.bridge.name,
            channel=message.subject,
            payload=message.data,
            received_at=utcnow(),
            key=nats_key(meta.stream, sequence, msg_id),
            variables={
                "subject": message.subject,
                "stream": meta.stream,
                "sequence": sequence,
                "message_id": msg_id or f"{meta.stream}:{sequence}",
            },
        )
