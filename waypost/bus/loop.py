"""The consumer loop every Waypost consumer runs.

poll a batch -> decode each record (undecodable or schema-invalid -> dead letter) ->
hand the decoded batch to the handler -> publish dead letters -> commit offsets.

Offsets are committed only after the handler returned and dead letters were
acknowledged, so a crash redelivers rather than loses. A handler error listed as
transient (database or broker unreachable) is retried in place until it clears; any
other error is isolated to the record that causes it, which is tried
``max_local_attempts`` times and then dead-lettered, so one poison record never blocks
its partition.

A handler that stops part-way through a batch because ``stop`` was set returns the
deliveries it did not finish; the loop then commits, per partition, only the records
before the first unfinished one, and the rest are delivered again.

With ``pause_while_handling`` a batch is handled in a helper thread; when it takes
longer than ``pause_after_s`` the loop pauses the subscriber and keeps polling it, so a
slow handler neither exceeds ``max.poll.interval.ms`` (which would take the member out
of its group and hand its records to another) nor lets more records in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar

from waypost.bus.base import Publisher, Subscriber
from waypost.bus.dead_letters import Failure, dead_letter
from waypost.bus.records import Headers, OutgoingRecord, ReceivedRecord
from waypost.errors import EventError
from waypost.events import Event, utcnow
from waypost.outages import BROKER, Backoff, Outages, dependency_of

log = logging.getLogger(__name__)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
R = TypeVar("R")
_Position = tuple[str, int, int]  # topic, partition, offset
_Alone = Literal["done", "unfinished", "stopped"]


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
    """Runs one subscriber until ``stop`` is set.

    ``handler`` returns None once it handled every delivery, or (only when stopping)
    the deliveries it did not finish.
    """

    subscriber: Subscriber
    dead_letters: Publisher
    handler: Callable[[Sequence[Received[T]]], Sequence[Received[T]] | None]
    group: str
    codec: Decoder[T]
    stop: threading.Event
    batch_size: int | Callable[[], int] = 500
    poll_timeout_s: float = 0.5
    max_local_attempts: int = 3
    transient: tuple[type[BaseException], ...] = ()
    retry_delay_s: float = 0.5
    on_idle: Callable[[], None] | None = None
    pause_while_handling: bool = False
    pause_after_s: float = 0.5
    outages: Outages = field(default_factory=Outages)
    dead_lettered: int = field(default=0, init=False)

    def run(self) -> None:
        """Consume until stopped, then leave the group."""
        try:
            while not self.stop.is_set():
                if not self.run_once() and self.on_idle is not None:
                    self._with_transient_retry(self.on_idle)
        finally:
            self.subscriber.close()

    def run_once(self) -> int:
        """Process one polled batch; returns how many records it held."""
        size = self.batch_size() if callable(self.batch_size) else self.batch_size
        records = self.subscriber.poll(size, self.poll_timeout_s)
        if not records:
            return 0
        if self.pause_while_handling:
            done = self._keeping_membership(lambda: self._process(records))
        else:
            done = self._process(records)
        if done:
            self.subscriber.commit(done)
        return len(records)

    def _process(self, records: list[ReceivedRecord]) -> list[ReceivedRecord]:
        """Decode, handle and dead-letter a batch; the records that may be committed."""
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
        unfinished: set[_Position] = set()
        if deliveries:
            handled = self._handle_batch(deliveries, dead)
            if handled is None:
                return []  # stopping mid-retry: leave offsets uncommitted
            unfinished = handled
        if dead and not self._publish_dead_letters(dead):
            return []
        return _committable(records, unfinished)

    def _keeping_membership(self, work: Callable[[], R]) -> R:
        """Run ``work`` in a helper thread; while it runs longer than ``pause_after_s``,
        keep polling the paused subscriber so this member stays in its group."""
        outcome: list[R] = []
        failure: list[BaseException] = []
        done = threading.Event()

        def run() -> None:
            try:
                outcome.append(work())
            except BaseException as error:
                failure.append(error)
            finally:
                done.set()

        name = f"{threading.current_thread().name}-batch"
        threading.Thread(target=run, name=name, daemon=True).start()
        if not done.wait(self.pause_after_s):
            self.subscriber.pause()
            try:
                while not done.wait(0.2):
                    self.subscriber.poll(1, 0)  # nothing while paused; serves the group
            finally:
                self.subscriber.resume()
        if failure:
            raise failure[0]
        return outcome[0]

    def _handle_batch(
        self, deliveries: list[Received[T]], dead: list[OutgoingRecord]
    ) -> set[_Position] | None:
        """The records left unfinished, or None when stopping mid-retry (commit nothing)."""
        try:
            handled, left = self._with_transient_retry(lambda: self.handler(deliveries))
        except Exception as error:
            if len(deliveries) == 1:
                return self._isolate(deliveries, dead, first_error=error)
            log.info("batch of %d failed (%s); isolating records", len(deliveries), error)
            return self._isolate(deliveries, dead)
        if not handled:
            return None
        return {_position(d.record) for d in left or ()}

    def _isolate(
        self,
        deliveries: list[Received[T]],
        dead: list[OutgoingRecord],
        first_error: Exception | None = None,
    ) -> set[_Position] | None:
        unfinished: set[_Position] = set()
        for delivery in deliveries:
            outcome = self._handle_alone(delivery, dead, first_error)
            first_error = None
            if outcome == "stopped":
                return None
            if outcome == "unfinished":
                unfinished.add(_position(delivery.record))
        return unfinished

    def _handle_alone(
        self,
        delivery: Received[T],
        dead: list[OutgoingRecord],
        first_error: Exception | None = None,
    ) -> _Alone:
        first_failure = utcnow() if first_error is not None else None
        attempts = 1 if first_error is not None else 0
        error = first_error
        while attempts < self.max_local_attempts and not isinstance(error, EventError):
            if attempts and self.stop.wait(self.retry_delay_s * attempts):
                return "stopped"
            try:
                handled, left = self._with_transient_retry(lambda: self.handler([delivery]))
                if not handled:
                    return "stopped"
                return "unfinished" if left else "done"
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
        return "done"

    def _with_transient_retry(self, action: Callable[[], R]) -> tuple[bool, R | None]:
        """(True, what ``action`` returned), or (False, None) when stopped while retrying.

        A transient error (the database or the broker out of reach) is an outage: the
        action is tried again with backoff, and the outage logged once, not per attempt."""
        backoff = Backoff(self.retry_delay_s)
        delay, failing = backoff.first, set[str]()
        while True:
            try:
                result = action()
            except self.transient as error:
                dependency = dependency_of(error) or type(error).__name__
                failing.add(dependency)
                self.outages.failed(dependency, error)
                if self.stop.wait(delay):
                    return False, None
                delay = backoff.after(delay)
                continue
            for dependency in failing:
                self.outages.recovered(dependency)
            return True, result

    def _publish_dead_letters(self, dead: list[OutgoingRecord]) -> bool:
        backoff = Backoff(self.retry_delay_s)
        delay = backoff.first
        while True:
            outcome = self.dead_letters.send(dead)
            if not outcome.failed:
                if delay > backoff.first:
                    self.outages.recovered(BROKER)
                self.dead_lettered += len(dead)
                return True
            dead = [dead[i] for i in sorted(outcome.failed)]
            self.outages.failed(
                BROKER, f"dead letters not acknowledged: {next(iter(outcome.failed.values()))}"
            )
            if self.stop.wait(delay):
                return False
            delay = backoff.after(delay)


def _position(record: ReceivedRecord) -> _Position:
    return record.topic, record.partition, record.offset


def _committable(records: list[ReceivedRecord], unfinished: set[_Position]) -> list[ReceivedRecord]:
    """The records before the first unfinished one of their partition."""
    if not unfinished:
        return records
    first: dict[tuple[str, int], int] = {}
    for topic, partition, offset in unfinished:
        first[(topic, partition)] = min(first.get((topic, partition), offset), offset)
    return [r for r in records if r.offset < first.get((r.topic, r.partition), r.offset + 1)]
