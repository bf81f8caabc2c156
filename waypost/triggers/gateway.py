"""From bridged messages to durable goals: the part of a bridge that is neither MQTT nor
NATS.

A batch of messages becomes a batch of Kafka records: a ``goal.submitted`` event on the
namespace's goals topic for each message that maps onto a goal (its id derived from the
message's identity, ``waypost.triggers.messages``), and a dead letter on the goals
topic's dead-letter topic for each that does not (the original bytes, in the
``waypost.bus.dead_letters`` format, so the indexer lists it for analysts). ``deliver``
returns only once the broker acknowledged every record, retrying in place meanwhile: the
caller acknowledges the messages to MQTT or NATS after that, never before, so a crash at
any point leaves them to be delivered again (and a goal id makes one workflow).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from waypost.bus.base import Publisher
from waypost.bus.dead_letters import INVALID, UNDECODABLE, Cause, dlq_headers, stack_digest
from waypost.bus.records import OutgoingRecord
from waypost.errors import InvalidEvent
from waypost.events import Codec, Event, GoalSubmitted, new_traceparent, utcnow
from waypost.topics import Topics
from waypost.triggers.errors import MappingError, UnreadableMessage
from waypost.triggers.mapping import GoalMapping
from waypost.triggers.messages import Incoming, draft, goal_id, mqtt_key

log = logging.getLogger("waypost.bridge")

BRIDGE_HEADER = "waypost-bridge"
CHANNEL_HEADER = "waypost-bridge-channel"
_MAX_BACKOFF_S = 10.0


@dataclass(frozen=True, slots=True)
class Route:
    """What a bridge does with its messages: the goal mapping, and where the sender's
    id is (MQTT only)."""

    bridge: str
    mapping: GoalMapping
    id_pointer: str | None = None


@dataclass
class Gateway:
    """Publishes bridged messages as goals (or dead letters) and waits for the broker."""

    publisher: Publisher
    topics: Topics
    codec: Codec
    stop: threading.Event
    clock: Callable[[], datetime] = utcnow
    on_outcome: Callable[[str, str], None] = field(default=lambda bridge, outcome: None)

    def records(self, route: Route, messages: Sequence[Incoming]) -> list[OutgoingRecord]:
        """The record each message becomes: its goal event, or its dead letter."""
        found: list[OutgoingRecord] = []
        for message in messages:
            try:
                found.append(self._goal(route, message))
                self.on_outcome(route.bridge, "goal")
            except (MappingError, InvalidEvent) as exc:
                log.warning(
                    "bridge %s: a message on %s cannot become a goal, dead-lettered to %s: %s",
                    route.bridge,
                    message.channel,
                    Topics.dlq(self.topics.goals),
                    exc,
                )
                found.append(self._dead_letter(route, message, exc))
                self.on_outcome(route.bridge, "dead_letter")
        return found

    def deliver(self, route: Route, messages: Sequence[Incoming]) -> bool:
        """Publish the records of ``messages`` and wait until the broker acknowledged
        every one, retrying the others with backoff (up to 10 s) until then. True once
        all are durable; False if the bridge is stopping first (acknowledge nothing)."""
        pending = self.records(route, messages)
        backoff = 0.1
        while pending:
            outcome = self.publisher.send(pending)
            if not outcome.failed:
                return True
            pending = [pending[index] for index in sorted(outcome.failed)]
            log.warning(
                "bridge %s: %d record(s) not acknowledged by Kafka (%s); retrying in %.1f s",
                route.bridge,
                len(pending),
                next(iter(outcome.failed.values())),
                backoff,
            )
            if self.stop.wait(backoff):
                return False
            backoff = min(backoff * 2, _MAX_BACKOFF_S)
        return True

    def _goal(self, route: Route, message: Incoming) -> OutgoingRecord:
        goal = draft(message, route.mapping, id_pointer=route.id_pointer)
        event = Event(
            GoalSubmitted(type=goal.type, input=goal.input),
            source=f"waypost/bridge/{route.bridge}",
            id=goal.goal_id,
            time=self.clock(),
            subject=goal.goal_id,
            traceparent=new_traceparent(),  # each bridged goal starts its own trace
        )
        encoded = self.codec.encode(event)  # InvalidEvent: input that cannot be stored
        log.debug("bridge %s: message %s -> goal %s", route.bridge, goal.message_id, goal.goal_id)
        return OutgoingRecord(self.topics.goals, encoded.key, encoded.value, encoded.headers)

    def _dead_letter(self, route: Route, message: Incoming, error: Exception) -> OutgoingRecord:
        now = self.clock()
        cause = Cause(
            reason=UNDECODABLE if isinstance(error, UnreadableMessage) else INVALID,
            # A replay goes to the goals topic: an analyst edits the record into a
            # goal.submitted event first (see docs/triggers.md, "MQTT and NATS bridges").
            source_topic=self.topics.goals,
            consumer_group=self.group(route.bridge),
            error_class=type(error).__name__,
            error_message=str(error),
            stack_digest=stack_digest(error),
            attempts=1,
            first_failure=now,
            last_failure=now,
            source_timestamp=str(int(message.received_at.timestamp() * 1000)),
        )
        key = message.key or mqtt_key(message.channel, message.payload, None)
        origin = (
            (BRIDGE_HEADER, route.bridge.encode()),
            (CHANNEL_HEADER, message.channel.encode()),
        )
        return OutgoingRecord(
            Topics.dlq(self.topics.goals),
            goal_id(route.bridge, key).encode(),
            message.payload,
            origin + dlq_headers(cause),
        )

    def group(self, bridge: str) -> str:
        """The name a bridge goes by in dead letters (``waypost-dlq-consumer-group``)."""
        return f"{self.topics.namespace}.bridge.{bridge}"
