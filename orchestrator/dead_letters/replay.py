"""Replaying dead letters: making, running and reporting replay requests, and resolving
or discarding dead letters.

A replay request names its dead letters (ids, or a filter frozen when the request is
made), an optional edit (``edits``), an optional target topic and a rate (``rate``). Its
id is chosen by the client, so retrying the same request never sends twice. Each dead
letter is sent at most once: replaying one that is no longer pending is recorded as a
no-op, also when two requests race for it (its row is locked while one of them decides).
Before anything is sent the (edited) record is checked (``prepare``), and the loop guard
(``guard``) refuses a message replayed too often unless the request is forced.

Records go out through the outbox in the transaction that marks the dead letters
replayed, so a crash or a broker outage delays them but never loses or doubles them.
The SQL is in ``orchestrator.store.replays`` and ``orchestrator.store.dead_letters``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from sqlalchemy import Engine

from orchestrator.dead_letters.orders import DryRun, Prepared, ReplayOrder
from orchestrator.dead_letters.prepare import prepare
from orchestrator.dead_letters.rate import CHUNK, TokenBucket, chunk_size
from orchestrator.errors import ReplayConflict, ReplayError
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.store import audit, outbox, replays
from orchestrator.store import dead_letters as index
from orchestrator.store.audit import AuditEntry
from orchestrator.store.dead_letters import DeadLetter, DeadLetterFilter
from orchestrator.store.replays import ItemOutcome, RequestState
from waypost.bus.base import Admin, TopicSpec
from waypost.bus.records import OutgoingRecord
from waypost.events import Codec
from waypost.telemetry import NO_TRACING, Tracing

log = logging.getLogger(__name__)


@dataclass
class Replayer:
    """Makes, runs and reports replay requests."""

    engine: Engine
    codec: Codec
    namespace: str
    admin: Admin
    publisher: OutboxPublisher | None
    clock: Callable[[], datetime]
    max_replays: int = 3
    default_partitions: int = 4
    stop: threading.Event = field(default_factory=threading.Event)
    tracing: Tracing = field(default=NO_TRACING)

    def prepare(self, letter: DeadLetter, order: ReplayOrder) -> Prepared:
        """The record a replay of ``letter`` sends, or why it sends nothing."""
        return prepare(letter, order, codec=self.codec, max_replays=self.max_replays)

    def dry_run(self, order: ReplayOrder, *, preview: int = 20) -> DryRun:
        """What ``order`` would send, checked like a real replay; changes nothing."""
        with self.engine.connect() as conn:
            ids = index.matching_ids(conn, filters=order.filters, namespace=self.namespace)
            counts: Counter[str] = Counter()
            previews: list[Prepared] = []
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                letters = index.by_ids(conn, ids=chunk)
                for letter_id in chunk:
                    prepared = self.prepare(letters[letter_id], order)
                    counts[prepared.outcome] += 1
                    if len(previews) < preview:
                        previews.append(prepared)
        with self.engine.begin() as conn:
            audit.record(conn, entries=[self._audit(order, "dlq.dry-run", len(ids))])
        return DryRun(len(ids), dict(counts), previews)

    def submit(self, order: ReplayOrder) -> tuple[RequestState, bool]:
        """Record the request and freeze its selection; returns its state and whether it
        is new (False: the same request was made before, nothing is added)."""
        if order.rate is not None and order.rate < 1:
            raise ReplayError("the rate must be at least 1 message per second (or unlimited)")
        with self.engine.begin() as conn:
            created = replays.create(
                conn,
                request_id=order.request_id,
                actor=order.actor,
                created_at=self.clock(),
                selection=order.selection(),
                target_topic=order.target_topic,
                edit=order.edit_json(),
                rate=order.rate,
                force=order.force,
            )
            if not created:
                existing = replays.get(conn, request_id=order.request_id)
                assert existing is not None
                if not order.matches(existing):
                    raise ReplayConflict(
                        f"replay request {order.request_id} was made before with other "
                        "dead letters, edit, target or options; use a new request id"
                    )
                return existing, False
            ids = index.matching_ids(conn, filters=order.filters, namespace=self.namespace)
            replays.add_items(conn, request_id=order.request_id, dead_letter_ids=ids)
            audit.record(conn, entries=[self._audit(order, "dlq.replay", len(ids))])
            state = replays.get(conn, request_id=order.request_id)
        assert state is not None
        return state, True

    def run(
        self, request_id: str, *, on_progress: Callable[[RequestState], None] | None = None
    ) -> RequestState:
        """Send the request's pending dead letters, rate-limited, until none is left
        (or ``stop`` is set: the request stays running and can be resumed)."""
        state = self.state(request_id)
        if state is None:
            raise ReplayError(f"no replay request {request_id}")
        order = ReplayOrder.resumed(state)
        bucket = TokenBucket(order.rate) if order.rate else None
        chunk = chunk_size(order.rate)
        try:
            self._check_topics(request_id, order)
            while not self.stop.is_set():
                with self.engine.connect() as conn:
                    size = min(chunk, replays.pending_count(conn, request_id=request_id))
                if size == 0:
                    break
                if bucket is not None and not bucket.wait_for(size, self.stop):
                    break
                sent = self._run_chunk(order, size)
                if sent is None:
                    break
                if self.publisher is not None and sent:
                    self.publisher.publish(sent)
                if on_progress is not None:
                    current = self.state(request_id)
                    assert current is not None
                    on_progress(current)
        except ReplayError as exc:
            self._finish(request_id, "failed", str(exc))
            raise
        else:
            if not self.stop.is_set():
                self._finish(request_id, "done", None)
        final = self.state(request_id)
        assert final is not None
        return final

    def _run_chunk(self, order: ReplayOrder, limit: int) -> list[tuple[int, OutgoingRecord]] | None:
        """Decide and enqueue up to ``limit`` pending items; None when none is left."""
        now = self.clock()
        with self.engine.begin() as conn:
            ids = replays.claim_pending(conn, request_id=order.request_id, limit=limit)
            if not ids:
                return None
            letters = index.lock(conn, ids=ids)
            decided = [self.prepare(letters[i], order) for i in ids if i in letters]
            to_send = [p for p in decided if p.outcome == "sent"]
            index.set_status(
                conn,
                ids=[p.dead_letter.id for p in to_send],
                status="replayed",
                actor=order.actor,
                at=now,
                request_id=order.request_id,
            )
            records = [
                self._traced(p.record, p.dead_letter, order)
                for p in to_send
                if p.record is not None
            ]
            row_ids = outbox.enqueue(conn, records=records)
            outcomes = [
                ItemOutcome(
                    dead_letter_id=p.dead_letter.id,
                    outcome=p.outcome,
                    detail=p.detail,
                    topic=p.record.topic if p.record else None,
                )
                for p in decided
            ]
            replays.record_outcomes(conn, request_id=order.request_id, outcomes=outcomes, at=now)
        return list(zip(row_ids, records, strict=True))

    def _traced(
        self, record: OutgoingRecord, letter: DeadLetter, order: ReplayOrder
    ) -> OutgoingRecord:
        """With tracing on: record a ``send`` span of the replay in the trace the message
        was in (its workflow's) and make it the parent of the replayed message."""
        if not self.tracing.enabled:
            return record
        original = next((v for n, v in record.headers if n == "traceparent"), None)
        traceparent, _ = self.tracing.finished_span(
            f"send {record.topic}",
            parent=original.decode(errors="replace") if original else None,
            start=self.clock(),
            end=self.clock(),
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.operation.type": "send",
                "waypost.dead_letter.id": letter.id,
                "waypost.replay.request_id": order.request_id,
                "waypost.replay.actor": order.actor,
            },
        )
        if traceparent is None:
            return record
        headers = tuple((n, v) for n, v in record.headers if n != "traceparent")
        return replace(record, headers=(*headers, ("traceparent", traceparent.encode())))

    def _check_topics(self, request_id: str, order: ReplayOrder) -> None:
        """Every topic the request sends to exists; the installation's own are created
        (a broker that lost its data lost them too), any other must exist already."""
        if order.target_topic:
            wanted = {order.target_topic}
        else:
            with self.engine.connect() as conn:
                wanted = replays.pending_source_topics(conn, request_id=request_id)
        missing = sorted(wanted - set(self.admin.list_topics()))
        own = [t for t in missing if t.startswith(self.namespace + ".")]
        foreign = [t for t in missing if t not in own]
        if foreign:
            raise ReplayError(
                f"topic {foreign[0]} does not exist; create it first or replay to another topic"
            )
        if own:
            self.admin.ensure_topics([TopicSpec(t, self.default_partitions) for t in own])

    def _finish(self, request_id: str, state: str, error: str | None) -> None:
        with self.engine.begin() as conn:
            replays.finish(conn, request_id=request_id, state=state, at=self.clock(), error=error)

    def state(self, request_id: str) -> RequestState | None:
        """A request and how far it got."""
        with self.engine.connect() as conn:
            return replays.get(conn, request_id=request_id)

    def unfinished(self) -> list[str]:
        """Requests still running (to resume after a restart), oldest first."""
        with self.engine.connect() as conn:
            return replays.running(conn)

    def history(self, *, limit: int = 50) -> list[RequestState]:
        """The newest requests first."""
        with self.engine.connect() as conn:
            return replays.newest(conn, limit=limit)

    def close(
        self,
        filters: DeadLetterFilter,
        *,
        status: Literal["resolved", "discarded"],
        actor: str,
        reason: str,
    ) -> tuple[list[int], int]:
        """Resolve or discard the pending dead letters that match; returns the ids that
        changed and how many matched but were not pending (no-ops)."""
        if not reason.strip():
            raise ReplayError(f"a reason is required to mark dead letters {status}")
        with self.engine.begin() as conn:
            ids = index.matching_ids(conn, filters=filters, namespace=self.namespace)
            changed = index.set_status(
                conn, ids=ids, status=status, actor=actor, at=self.clock(), reason=reason
            )
            action = "dlq.resolve" if status == "resolved" else "dlq.discard"
            detail = {
                "filter": filters.as_json(),
                "count": len(changed),
                "noop": len(ids) - len(changed),
                "reason": reason,
                "ids": changed[:1000],
            }
            audit.record(conn, entries=[AuditEntry(actor=actor, action=action, detail=detail)])
        return changed, len(ids) - len(changed)

    def _audit(self, order: ReplayOrder, action: str, count: int) -> AuditEntry:
        return AuditEntry(
            actor=order.actor,
            action=action,
            detail={
                "request_id": order.request_id,
                "filter": order.selection(),
                "count": count,
                "target_topic": order.target_topic,
                "edit": order.edit_json(),
                "rate": order.rate,
                "force": order.force,
            },
        )
