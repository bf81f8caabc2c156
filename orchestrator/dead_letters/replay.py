"""Replaying dead letters, with guard rails.

A replay request names its dead letters (ids, or a filter frozen when the request is
made), an optional edit, an optional target topic and a rate. Its id is chosen by the
client, so retrying the same request never sends twice. Each dead letter is sent at most
once: replaying one that is no longer pending is recorded as a no-op, also when two
requests race for it (its row is locked while one of them decides). Before anything is
sent the (edited) record is checked: a Waypost event must pass its JSON Schema. A dead
letter whose message was replayed ``max_replays`` times already is refused unless the
request is forced (the loop guard).

Records go out through the outbox in the transaction that marks the dead letters
replayed, so a crash or a broker outage delays them but never loses or doubles them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy import Connection, Engine, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from orchestrator.dead_letters.records import replay_record
from orchestrator.publishing.outbox import OutboxPublisher
from orchestrator.store import audit, outbox
from orchestrator.store import dead_letters as index
from orchestrator.store.audit import AuditEntry
from orchestrator.store.dead_letters import DeadLetter, DeadLetterFilter
from orchestrator.store.tables import replay_items, replay_requests
from waypost.bus.base import Admin, TopicSpec
from waypost.bus.records import OutgoingRecord
from waypost.errors import EventError
from waypost.events import Codec
from waypost.telemetry import NO_TRACING, Tracing

log = logging.getLogger(__name__)

Outcome = Literal["pending", "sent", "noop", "refused", "invalid"]
OUTCOMES: tuple[Outcome, ...] = ("sent", "noop", "refused", "invalid", "pending")
CHUNK = 500


class ReplayError(Exception):
    """A replay request that cannot be made as asked; the message says why."""


class ReplayConflict(ReplayError):
    """The request id was used before for a different replay."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, ``null`` removes a member, anything
    else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = merge_patch(merged.get(name), value)
    return merged


@dataclass(frozen=True, slots=True)
class Edit:
    """A change to the payload before it is sent: a whole new payload, or a merge patch."""

    kind: Literal["replace", "merge_patch"]
    document: Any

    def apply(self, payload: Any) -> Any:
        return self.document if self.kind == "replace" else merge_patch(payload, self.document)

    def as_json(self) -> dict[str, Any]:
        return {self.kind: self.document}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Edit | None:
        if not data:
            return None
        ((kind, document),) = data.items()
        if kind == "replace":
            return cls("replace", document)
        if kind == "merge_patch":
            return cls("merge_patch", document)
        raise ReplayError(f"unknown edit {kind!r}: use replace or merge_patch")


@dataclass(frozen=True, slots=True)
class ReplayOrder:
    """What an analyst asks for."""

    request_id: str
    actor: str
    filters: DeadLetterFilter
    target_topic: str | None = None
    edit: Edit | None = None
    rate: float | None = 200.0  # messages per second; None: as fast as possible
    force: bool = False
    # How the client named the dead letters (e.g. its filter expression), stored with
    # the request so that a retry with a relative time ("since=2h") is the same request.
    given: dict[str, Any] | None = None

    def selection(self) -> dict[str, Any]:
        return self.given if self.given is not None else self.filters.as_json()


@dataclass(frozen=True, slots=True)
class Prepared:
    """What replaying one dead letter would do."""

    dead_letter: DeadLetter
    outcome: Outcome
    detail: str | None
    record: OutgoingRecord | None
    payload: Any = None


@dataclass(frozen=True, slots=True)
class RequestState:
    """A replay request and how far it got."""

    id: str
    actor: str
    created_at: datetime
    finished_at: datetime | None
    state: str
    total: int
    counts: dict[str, int]
    selection: dict[str, Any]
    target_topic: str | None
    edit: dict[str, Any] | None
    rate: float | None
    force: bool
    error: str | None

    @property
    def done(self) -> int:
        """Dead letters decided so far (sent, no-op, refused or invalid)."""
        return self.total - self.counts.get("pending", 0)


@dataclass(frozen=True, slots=True)
class DryRun:
    """What a replay would do, without doing it."""

    total: int
    counts: dict[str, int]
    previews: list[Prepared]


@dataclass
class TokenBucket:
    """At most ``rate`` tokens a second, bursts up to one second's worth."""

    rate: float
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(default=0.0, init=False)
    _at: float | None = field(default=None, init=False)

    def wait_for(self, tokens: int, stop: threading.Event) -> bool:
        """Block until ``tokens`` are available and take them; False if stopped first."""
        now = self.clock()
        if self._at is None:
            self._tokens, self._at = min(self.rate, tokens), now
        self._tokens = min(max(self.rate, tokens), self._tokens + (now - self._at) * self.rate)
        self._at = now
        short = tokens - self._tokens
        if short > 0 and stop.wait(short / self.rate):
            return False
        self._tokens -= tokens
        if short > 0:
            self._tokens, self._at = 0.0, self.clock()
        return True


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

    # --- preparing one dead letter ---------------------------------------------------

    def prepare(self, letter: DeadLetter, order: ReplayOrder) -> Prepared:
        """The record a replay of ``letter`` sends, or why it sends nothing."""
        if letter.status != "pending":
            by = f" by {letter.status_by}" if letter.status_by else ""
            request = f" (request {letter.replay_request_id})" if letter.replay_request_id else ""
            return Prepared(letter, "noop", f"already {letter.status}{by}{request}", None)
        if letter.replay_count >= self.max_replays and not order.force:
            return Prepared(
                letter,
                "refused",
                f"its message was replayed {letter.replay_count} time(s) already "
                f"(limit {self.max_replays}); force the replay to send it anyway",
                None,
            )
        value, payload = letter.value, letter.payload
        if order.edit is not None:
            if letter.payload is None and letter.value:
                return Prepared(
                    letter, "invalid", "the value is not JSON: it cannot be edited", None
                )
            payload = order.edit.apply(letter.payload)
            value = orjson.dumps(payload)
        record = replay_record(
            dead_letter_id=letter.id,
            topic=order.target_topic or letter.source_topic,
            key=letter.key,
            value=value,
            headers=letter.headers,
            replay_count=letter.replay_count,
            request_id=order.request_id,
        )
        problem = self._problem(record)
        if problem is not None:
            return Prepared(letter, "invalid", problem, None, payload)
        return Prepared(letter, "sent", None, record, payload)

    def _problem(self, record: OutgoingRecord) -> str | None:
        """Why the record would be dead-lettered again at once (None: it passes)."""
        if not any(name == "ce_type" for name, _ in record.headers):
            return None  # not a Waypost event: no schema to check it against
        try:
            self.codec.decode(record.value, record.headers)
        except EventError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    # --- dry run ---------------------------------------------------------------------

    def dry_run(self, order: ReplayOrder, *, preview: int = 20) -> DryRun:
        """What ``order`` would send, checked like a real replay; changes nothing."""
        with self.engine.connect() as conn:
            ids = index.matching_ids(conn, filters=order.filters, namespace=self.namespace)
            counts: Counter[str] = Counter()
            previews: list[Prepared] = []
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                letters = _by_id(conn, chunk)
                for letter_id in chunk:
                    prepared = self.prepare(letters[letter_id], order)
                    counts[prepared.outcome] += 1
                    if len(previews) < preview:
                        previews.append(prepared)
        with self.engine.begin() as conn:
            audit.record(conn, entries=[self._audit(order, "dlq.dry-run", len(ids))])
        return DryRun(len(ids), dict(counts), previews)

    # --- requests --------------------------------------------------------------------

    def submit(self, order: ReplayOrder) -> tuple[RequestState, bool]:
        """Record the request and freeze its selection; returns its state and whether it
        is new (False: the same request was made before, nothing is added)."""
        if order.rate is not None and order.rate < 1:
            raise ReplayError("the rate must be at least 1 message per second (or unlimited)")
        with self.engine.begin() as conn:
            created = conn.execute(
                insert(replay_requests)
                .values(
                    id=order.request_id,
                    actor=order.actor,
                    created_at=self.clock(),
                    state="running",
                    selection=order.selection(),
                    target_topic=order.target_topic,
                    edit=order.edit.as_json() if order.edit else None,
                    rate=order.rate,
                    force=order.force,
                    total=0,
                )
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(replay_requests.c.id)
            ).first()
            if created is None:
                existing = _state(conn, order.request_id)
                assert existing is not None
                if not _same(existing, order):
                    raise ReplayConflict(
                        f"replay request {order.request_id} was made before with other "
                        "dead letters, edit, target or options; use a new request id"
                    )
                return existing, False
            ids = index.matching_ids(conn, filters=order.filters, namespace=self.namespace)
            if ids:
                conn.execute(
                    insert(replay_items),
                    [
                        {"request_id": order.request_id, "dead_letter_id": i, "outcome": "pending"}
                        for i in ids
                    ],
                )
            conn.execute(
                update(replay_requests)
                .where(replay_requests.c.id == order.request_id)
                .values(total=len(ids))
            )
            audit.record(conn, entries=[self._audit(order, "dlq.replay", len(ids))])
            state = _state(conn, order.request_id)
        assert state is not None
        return state, True

    def run(
        self, request_id: str, *, on_progress: Callable[[RequestState], None] | None = None
    ) -> RequestState:
        """Send the request's pending dead letters, rate-limited, until none is left
        (or ``stop`` is set: the request stays running and can be resumed)."""
        with self.engine.connect() as conn:
            state = _state(conn, request_id)
        if state is None:
            raise ReplayError(f"no replay request {request_id}")
        order = _order(state)
        bucket = TokenBucket(order.rate) if order.rate else None
        chunk = CHUNK if order.rate is None else max(1, min(CHUNK, int(order.rate)))
        try:
            self._check_topics(request_id, order)
            while not self.stop.is_set():
                size = min(chunk, self._pending(request_id))
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
            ids = [
                row.dead_letter_id
                for row in conn.execute(
                    select(replay_items.c.dead_letter_id)
                    .where(
                        replay_items.c.request_id == order.request_id,
                        replay_items.c.outcome == "pending",
                    )
                    .order_by(replay_items.c.dead_letter_id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                ).all()
            ]
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
            _record_outcomes(conn, order.request_id, decided, now)
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

    def _pending(self, request_id: str) -> int:
        with self.engine.connect() as conn:
            query = (
                select(func.count())
                .select_from(replay_items)
                .where(replay_items.c.request_id == request_id, replay_items.c.outcome == "pending")
            )
            return int(conn.execute(query).scalar_one())

    def _check_topics(self, request_id: str, order: ReplayOrder) -> None:
        """Every topic the request sends to exists; the installation's own are created
        (a broker that lost its data lost them too), any other must exist already."""
        with self.engine.connect() as conn:
            wanted = (
                {order.target_topic}
                if order.target_topic
                else set(
                    conn.execute(
                        text(
                            "SELECT DISTINCT d.source_topic FROM replay_items i "
                            "JOIN dead_letters d ON d.id = i.dead_letter_id "
                            "WHERE i.request_id = :r "
                            "AND i.outcome = 'pending'"
                        ),
                        {"r": request_id},
                    ).scalars()
                )
            )
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
            conn.execute(
                update(replay_requests)
                .where(replay_requests.c.id == request_id, replay_requests.c.state == "running")
                .values(state=state, finished_at=self.clock(), error=error)
            )

    def state(self, request_id: str) -> RequestState | None:
        """A request and how far it got."""
        with self.engine.connect() as conn:
            return _state(conn, request_id)

    def unfinished(self) -> list[str]:
        """Requests still running (to resume after a restart), oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(replay_requests.c.id)
                .where(replay_requests.c.state == "running")
                .order_by(replay_requests.c.created_at)
            ).all()
        return [row.id for row in rows]

    def history(self, *, limit: int = 50) -> list[RequestState]:
        """The newest requests first."""
        with self.engine.connect() as conn:
            ids = conn.execute(
                select(replay_requests.c.id)
                .order_by(replay_requests.c.created_at.desc())
                .limit(limit)
            ).scalars()
            states = [_state(conn, i) for i in ids]
        return [s for s in states if s is not None]

    # --- resolve and discard ---------------------------------------------------------

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
                "edit": order.edit.as_json() if order.edit else None,
                "rate": order.rate,
                "force": order.force,
            },
        )


def _by_id(conn: Connection, ids: Sequence[int]) -> dict[int, DeadLetter]:
    page = index.search(
        conn,
        filters=DeadLetterFilter(status=None, ids=tuple(ids)),
        namespace="",
        page_size=max(1, len(ids)),
    )
    return {letter.id: letter for letter in page.rows}


def _record_outcomes(
    conn: Connection, request_id: str, decided: Sequence[Prepared], now: datetime
) -> None:
    conn.execute(
        text(
            "UPDATE replay_items AS i SET outcome = v.outcome, detail = v.detail, "
            "topic = v.topic, at = :at FROM unnest(CAST(:ids AS bigint[]), "
            "CAST(:outcomes AS text[]), CAST(:details AS text[]), CAST(:topics AS text[])) "
            "AS v(id, outcome, detail, topic) "
            "WHERE i.request_id = :request AND i.dead_letter_id = v.id"
        ),
        {
            "at": now,
            "request": request_id,
            "ids": [p.dead_letter.id for p in decided],
            "outcomes": [p.outcome for p in decided],
            "details": [p.detail for p in decided],
            "topics": [p.record.topic if p.record else None for p in decided],
        },
    )


def _state(conn: Connection, request_id: str) -> RequestState | None:
    row = conn.execute(select(replay_requests).where(replay_requests.c.id == request_id)).first()
    if row is None:
        return None
    counts = {
        outcome: int(n)
        for outcome, n in conn.execute(
            select(replay_items.c.outcome, func.count())
            .where(replay_items.c.request_id == request_id)
            .group_by(replay_items.c.outcome)
        ).all()
    }
    return RequestState(
        id=row.id,
        actor=row.actor,
        created_at=row.created_at,
        finished_at=row.finished_at,
        state=row.state,
        total=row.total,
        counts={outcome: counts.get(outcome, 0) for outcome in OUTCOMES},
        selection=row.selection,
        target_topic=row.target_topic,
        edit=row.edit,
        rate=row.rate,
        force=row.force,
        error=row.error,
    )


def _order(state: RequestState) -> ReplayOrder:
    return ReplayOrder(
        request_id=state.id,
        actor=state.actor,
        filters=DeadLetterFilter(status=None),  # the frozen items are the selection now
        target_topic=state.target_topic,
        edit=Edit.from_json(state.edit),
        rate=state.rate,
        force=state.force,
    )


def _same(state: RequestState, order: ReplayOrder) -> bool:
    edit = order.edit.as_json() if order.edit else None
    return (state.selection, state.target_topic, state.edit, state.rate, state.force) == (
        order.selection(),
        order.target_topic,
        edit,
        order.rate,
        order.force,
    )
