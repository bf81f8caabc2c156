"""The cascade consumer: reads the trigger topics and submits the goals events start.

A batch's goals are submitted in one transaction (``orchestrator.goals.submit``: the
accepted workflow and its ``goal.submitted`` outbox row), published after commit, and
the loop commits the offsets only then, so an event is acted on at least once and,
by its derived goal id, starts each workflow once. An event that may not start its
workflows (``CascadeError``) fails the batch before anything is written; the loop then
handles each record alone and dead-letters that one to ``<topic>.dlq`` with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from orchestrator import goals
from orchestrator.cascades.events import TriggerEvent, read_event
from orchestrator.cascades.matching import Start, Triggers
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.publishing.records import Outgoing
from waypost.bus.loop import Received
from waypost.bus.records import Headers, OutgoingRecord
from waypost.events import new_traceparent

log = logging.getLogger(__name__)

SOURCE = "waypost/cascade"

CascadeDelivery = Received[TriggerEvent | None]


class TriggerDecoder:
    """The consumer loop's decoder: the CloudEvent a record holds, or None for a record
    that holds none (a trigger topic is shared; what is not an event is not ours to
    dead-letter)."""

    def decode(self, value: bytes | None, headers: Headers) -> TriggerEvent | None:
        """See the class docstring."""
        return read_event(value, headers)


@dataclass
class CascadeConsumer:
    """Turns a batch of trigger-topic records into submitted goals."""

    engine: Engine
    triggers: Triggers
    outgoing: Outgoing
    publisher: OutboxPublisher
    clock: Callable[[], datetime]
    max_depth: int

    def handle(self, deliveries: Sequence[CascadeDelivery]) -> None:
        """Submit the goals of every matching event (CascadeError: one may not start)."""
        starts: list[tuple[TriggerEvent, Start]] = []
        for delivery in deliveries:
            event = delivery.event
            if event is None:
                continue
            found = self.triggers.starts(delivery.record.topic, event, max_depth=self.max_depth)
            starts.extend((event, start) for start in found)
        if not starts:
            return
        rows: list[tuple[int, OutgoingRecord]] = []
        now = self.clock()
        with self.engine.begin() as conn:
            for event, start in starts:
                accepted = goals.submit(
                    conn,
                    goal=goals.GoalSubmission(
                        goal_id=start.goal_id,
                        type=start.goal_type,
                        input=start.input,
                        traceparent=new_traceparent(),  # a workflow is a trace of its own
                        source=SOURCE,
                    ),
                    outgoing=self.outgoing,
                    now=now,
                )
                rows.extend(accepted.outbox)
                log.info(
                    "event %s (%s from %s) %s workflow %s of %s",
                    event.id,
                    event.type,
                    event.source,
                    "started" if accepted.created else "already started",
                    start.goal_id,
                    start.goal_type,
                )
        self.publisher.publish(rows)
