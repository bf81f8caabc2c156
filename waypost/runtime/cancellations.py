"""Which task attempts were cancelled, as this worker process heard it.

A person cancels a workflow (docs/architecture.md, "Cancelling a workflow"); the
``workflow.cancelled`` event on the workflow events topic names the attempts that were
dispatched and may still be running. ``CancellationListener`` reads that topic in every
worker process and tells ``Cancellations``, which sets the ``ctx.cancellation`` of a
handler running one of those attempts, and which the worker asks before it starts a
task (a cancelled attempt is not run).

The listener is its own consumer group, one per process (``<namespace>.cancellations.
<instance>.<random>``), never a member of the agents' task groups: every process must see
every cancellation, whichever partitions of the task topics it owns. It never commits,
so its group leaves nothing behind on the broker. Starting at the end of the topic
would do (a task dispatched before the process started and cancelled later is still
seen), but the bus starts a group without committed offsets at the beginning: so the
listener reads the topic through once at start-up (decoding only ``workflow.cancelled``)
and keeps the cancellations of the last ``remember_s`` (an hour), which also spares a
task cancelled shortly before the process started. Every other event type, and a record it cannot
read, is skipped: the topic is for subscribers, nothing there is dead-lettered.

Optional by design: when the listener cannot be created the process runs without it
(cancelled handlers run to the end, and the orchestrator ignores their results).
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from waypost.bus.base import Bus, Subscriber
from waypost.bus.records import ReceivedRecord
from waypost.events import Codec, WorkflowCancelled, utcnow
from waypost.events.envelope import TYPE_PREFIX
from waypost.events.modes import STRUCTURED_CONTENT_TYPE
from waypost.topics import Topics

log = logging.getLogger(__name__)

REMEMBER_S = 3600.0  # longer than a step's lease in practice; bounds the memory used
_CANCELLED_TYPE = (TYPE_PREFIX + WorkflowCancelled.TYPE).encode()

Attempt = tuple[str, int]  # (task id, attempt)


class Cancellations:
    """The cancelled attempts of the last ``remember_s``, and the handlers to tell."""

    def __init__(
        self, *, remember_s: float = REMEMBER_S, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._remember = timedelta(seconds=remember_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._until: dict[Attempt, datetime] = {}  # forgotten after that moment
        self._watching: dict[Attempt, list[threading.Event]] = {}

    def cancel(self, attempts: Iterable[Attempt], *, at: datetime) -> int:
        """Record attempts cancelled at ``at`` and set the events of their running
        handlers; how many were new (none if ``at`` is older than ``remember_s``)."""
        until = at + self._remember
        now = self._clock()
        new = 0
        with self._lock:
            self._until = {a: t for a, t in self._until.items() if t > now}
            if until <= now:
                return 0
            for attempt in attempts:
                if attempt not in self._until:
                    new += 1
                self._until[attempt] = max(until, self._until.get(attempt, until))
                for event in self._watching.get(attempt, ()):
                    event.set()
        return new

    def is_cancelled(self, task_id: str, attempt: int) -> bool:
        """Whether this attempt was cancelled (within the last ``remember_s``)."""
        with self._lock:
            until = self._until.get((task_id, attempt))
        return until is not None and until > self._clock()

    @contextmanager
    def watching(self, task_id: str, attempt: int, event: threading.Event) -> Iterator[None]:
        """Set ``event`` when this attempt is cancelled (at once if it was already),
        until the block ends."""
        key = (task_id, attempt)
        with self._lock:
            self._watching.setdefault(key, []).append(event)
        if self.is_cancelled(task_id, attempt):
            event.set()
        try:
            yield
        finally:
            with self._lock:
                events = self._watching[key]
                events.remove(event)
                if not events:
                    del self._watching[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._until)


@dataclass
class CancellationListener:
    """Reads the workflow events topic until ``stop`` and records every
    ``workflow.cancelled`` in ``cancellations``; ``seen`` counts those read."""

    subscriber: Subscriber
    cancellations: Cancellations
    codec: Codec
    stop: threading.Event
    poll_timeout_s: float = 0.5
    seen: int = 0
    _troubled: bool = field(default=False, repr=False)

    def run(self) -> None:
        """Poll until ``stop``; nothing it meets stops the process (it is optional)."""
        try:
            while not self.stop.is_set():
                try:
                    records = self.subscriber.poll(500, self.poll_timeout_s)
                except Exception as exc:
                    # The task loops report the broker's outages; this one just waits.
                    if not self._troubled:
                        log.warning("cannot read workflow cancellations (will retry): %s", exc)
                    self._troubled = True
                    self.stop.wait(1.0)
                    continue
                self._troubled = False
                self.take(records)
        finally:
            self.subscriber.close()

    def take(self, records: Sequence[ReceivedRecord]) -> None:
        """Record the cancellations among ``records``; skip everything else."""
        for record in records:
            content_type = record.header("content-type") or b""
            structured = content_type.startswith(STRUCTURED_CONTENT_TYPE.encode())
            if not structured and record.header("ce_type") != _CANCELLED_TYPE:
                continue  # other lifecycle events (binary mode): not ours to judge
            try:
                event = self.codec.decode(record.value, record.headers)
            except Exception as exc:
                log.warning(
                    "skipping an unreadable record at %s[%d]@%d: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    exc,
                )
                continue
            payload = event.payload
            if not isinstance(payload, WorkflowCancelled):
                continue  # another structured event, or headers that disagree
            self.seen += 1
            attempts = [(t.task_id, t.attempt) for t in payload.tasks]
            if self.cancellations.cancel(attempts, at=event.time) and attempts:
                log.info(
                    "workflow %s cancelled by %s: %d attempt(s) told to stop",
                    payload.workflow_id,
                    payload.cancelled_by,
                    len(attempts),
                )


def listen_for_cancellations(
    bus: Bus,
    *,
    topics: Topics,
    codec: Codec,
    instance: str,
    cancellations: Cancellations,
    stop: threading.Event,
) -> CancellationListener | None:
    """A listener with its own consumer group, or None (logged once) if the consumer
    cannot be created: cancellation then still works on the orchestrator's side."""
    who = re.sub(r"[^A-Za-z0-9._-]", "-", instance)  # host:pid as a name part
    group = f"{topics.namespace}.cancellations.{who}.{uuid.uuid4().hex[:8]}"
    try:
        subscriber = bus.subscriber(group, [topics.workflow_events], "agent-cancellations")
    except Exception as exc:
        log.warning(
            "cannot read %s (%s): running handlers of cancelled workflows will not be "
            "told to stop; their results are still ignored",
            topics.workflow_events,
            exc,
        )
        return None
    return CancellationListener(subscriber, cancellations, codec, stop)
