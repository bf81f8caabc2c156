"""Publishing outbox rows right after the transaction that wrote them commits."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from orchestrator.store import outbox
from waypost.bus.base import Publisher, PublishOutcome
from waypost.bus.records import OutgoingRecord

log = logging.getLogger(__name__)

OutboxRows = Sequence[tuple[int, OutgoingRecord]]


@dataclass
class OutboxPublisher:
    """Sends committed outbox rows and removes the ones the broker acknowledged.

    Rows it could not send stay in the outbox for the relay's next sweep, so a broker
    outage delays events but never loses them. With ``defer_removal``, acknowledged rows
    are deleted by the caller's next transaction (``take_acknowledged``) instead of one
    of their own, saving a round trip per batch; ``remove_acknowledged`` catches up when
    the caller is idle.
    """

    engine: Engine
    publisher: Publisher
    defer_removal: bool = False
    _acknowledged: list[int] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def publish(self, rows: OutboxRows) -> PublishOutcome:
        """Send rows (already committed) and delete, or queue for deletion, the acknowledged.

        Never raises: the rows are committed, so whatever goes wrong here (a broker
        outage, a database that went away since) only leaves them to the relay."""
        if not rows:
            return PublishOutcome()
        try:
            outcome = self.publisher.send([record for _, record in rows])
        except Exception as exc:
            log.warning(
                "%d event(s) not sent (%s); kept in the outbox for the relay", len(rows), exc
            )
            return PublishOutcome(failed={index: str(exc) for index in range(len(rows))})
        delivered = [rows[index][0] for index in outcome.delivered]
        if self.defer_removal:
            with self._lock:
                self._acknowledged.extend(delivered)
        elif delivered:
            try:
                with self.engine.begin() as conn:
                    outbox.remove(conn, ids=delivered)
            except Exception as exc:
                # Sent but still in the outbox: the relay sends them once more, which
                # every consumer tolerates.
                log.warning("could not delete %d sent outbox row(s): %s", len(delivered), exc)
        if outcome.failed:
            log.warning(
                "%d event(s) not acknowledged (%s); kept in the outbox for the relay",
                len(outcome.failed),
                next(iter(outcome.failed.values())),
            )
        return outcome

    def take_acknowledged(self) -> list[int]:
        """Ids of acknowledged rows not yet deleted; the caller deletes them."""
        with self._lock:
            taken, self._acknowledged = self._acknowledged, []
        return taken

    def give_back(self, ids: Sequence[int]) -> None:
        """Return ids from ``take_acknowledged`` whose deletion was rolled back."""
        with self._lock:
            self._acknowledged.extend(ids)

    def remove_acknowledged(self) -> None:
        """Delete acknowledged rows now (in a transaction of their own)."""
        ids = self.take_acknowledged()
        if ids:
            try:
                with self.engine.begin() as conn:
                    outbox.remove(conn, ids=ids)
            except BaseException:
                self.give_back(ids)
                raise
