"""The consumer loop every Waypost consumer runs.

poll a batch -> decode each record (undecodable or schema-invalid -> dead letter) ->
hand the decoded batch to the handler -> publish dead letters -> commit offsets.

Offsets are committed only after the handler returned and dead letters were
acknowledged, so a crash redelivers rather than loses. A handler error listed as
transient (database or broker unreachable) is retried in place until it clears; any
other error is isolated to the record that causes it, which is tried
``max_local_attempts`` times and then dead-lettered, so one poison record never blocks
its partition.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from waypost.bus.base import Publisher, Subscriber
from waypost.bus.deadletter import Failure, dead_letter
from waypost.bus.records import Headers, OutgoingRecord, ReceivedRecord
from waypost.errors import EventError
from waypost.events import Event, utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Decoder(Protocol[T_co]):
    """Turns a record into what the handler works on; raises EventError when it cannot
    (the record is dead-lettered). The event codec is one."""

    def decode(self, value: bytes | None, headers: Headers) -> T_co: ...


@dataclass(frozen=True)  # no slots: Received[Event](...) sets __orig_class__
class Received(Generic[T]):
    """A decoded record: what the decoder made of it, and the record itself."""

    record: ReceivedRecord
    event: T


Delivery = Received[Event]  # a decoded Waypost event with the record it came from


@dataclass
class ConsumerLoop(Generic[T]):
    """Runs one subscriber until ``stop`` is set."""

    subscriber: Subscriber
    dead_letters: Publisher
    handler: Callable[[Sequence[Received[T]]], None]
    group: str
    codec: Decoder[T]
    stop: threading.Event
    batch_size: int | Callable[[], int] = 500
    poll_timeout_s: float = 0.5
    max_local_attempts: int = 3
    transient: tuple[type[BaseException], ...] = ()
    retry_delay_s: float = 0.5
    on_idle: Callable[[], None] | None = None
    dead_lettered: int = field(default=0, init=False)

    def run(self) -> None:
        """Consume until stopped, then leave the group."""
        try:
            while not self.stop.is_set():
                if not self.run_once() and self.on_idle is not None:
                    self.on_idle()
        finally:
            self.subscriber.close()

    def run_once(self) -> int:
        """Process one polled batch; returns how many records it held."""
        size = self.batch_size() if callable(self.batch_size) else self.batch_size
        records = self.subscriber.poll(size, self.poll_timeout_s)
        if not records:
            return 0
        deliveries: list[Received[T]] = []
        dead: list[OutgoingRecord] = []
        for record in records:
            try:
                deliveries.append(Received(record, self.codec.decode(record.value, record.headers)))
            except EventError as error:
                now = utcnow()
                log.warning(
                    "dead-lettering %s[%d]@%d: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    error,
                )
                dead.append(dead_letter(record, Failure(error, 1, now, now), group=self.group))
        if deliveries and not self._handle_batch(deliveries, dead):
            return len(records)  # stopping mid-retry: leave offsets uncommitted
        if dead and not self._publish_dead_letters(dead):
            return len(records)
        self.subscriber.commit(records)
        return len(records)

    def _handle_batch(self, deliveries: list[Received[T]], dead: list[OutgoingRecord]) -> bool:
        try:
            return self._with_transient_retry(lambda: self.handler(deliveries))
        except Exception as error:
            if len(deliveries) == 1:
                return self._handle_alone(deliveries[0], dead, first_error=error)
            log.info("batch of %d failed (%s); isolating records", len(deliveries), error)
        return all(self._handle_alone(d, dead) for d in deliveries)

    def _handle_alone(
        self,
        delivery: Received[T],
        dead: list[OutgoingRecord],
        first_error: Exception | None = None,
    ) -> bool:
        first_failure = utcnow() if first_error is not None else None
        attempts = 1 if first_error is not None else 0
        error = first_error
        while attempts < self.max_local_attempts and not isinstance(error, EventError):
            if attempts and self.stop.wait(self.retry_delay_s * attempts):
                return False
            try:
                return self._with_transient_retry(lambda: self.handler([delivery]))
            except EventError as exc:
                # The event itself is wrong for this consumer: trying again cannot help.
                attempts, error = attempts + 1, exc
                first_failure = first_failure or utcnow()
                break
            except Exception as exc:
                attempts += 1
                error = exc
                first_failure = first_failure or utcnow()
        assert error is not None
        assert first_failure is not None
        record = delivery.record
        log.error(
            "dead-lettering %s[%d]@%d after %d attempt(s): %r",
            record.topic,
            record.partition,
            record.offset,
            attempts,
            error,
        )
        dead.append(
            dead_letter(record, Failure(error, attempts, first_failure, utcnow()), group=self.group)
        )
        return True

    def _with_transient_retry(self, action: Callable[[], None]) -> bool:
        delay = self.retry_delay_s
        while True:
            try:
                action()
                return True
            except self.transient as error:
                log.warning("transient failure, retrying in %.1f s: %s", delay, error)
                if self.stop.wait(delay):
                    return False
                delay = min(delay * 2, 10.0)

    def _publish_dead_letters(self, dead: list[OutgoingRecord]) -> bool:
        delay = self.retry_delay_s
        while True:
            outcome = self.dead_letters.send(dead)
            if not outcome.failed:
                self.dead_lettered += len(dead)
                return True
            dead = [dead[i] for i in sorted(outcome.failed)]
            log.warning("dead letters not acknowledged, retrying: %s", outcome.failed)
            if self.stop.wait(delay):
                return False
            delay = min(delay * 2, 10.0)
