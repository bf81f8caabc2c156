"""Replay requests and their items: who asked to replay which dead letters, how (target,
edit, rate, force), and per dead letter what the replay did (``pending`` until decided,
then sent, no-op, refused or invalid) and why.

A request's items are frozen when it is made, so resuming it after a restart sends the
same dead letters; a runner claims pending items with ``FOR UPDATE SKIP LOCKED``, so two
runners of one request never decide an item twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, Select, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from orchestrator.store.tables import dead_letters, replay_items, replay_requests

Outcome = Literal["pending", "sent", "noop", "refused", "invalid"]
OUTCOMES: tuple[Outcome, ...] = ("sent", "noop", "refused", "invalid", "pending")

_RECORD_OUTCOMES = text(
    "UPDATE replay_items AS i SET outcome = v.outcome, detail = v.detail, "
    "topic = v.topic, at = :at FROM unnest(CAST(:ids AS bigint[]), "
    "CAST(:outcomes AS text[]), CAST(:details AS text[]), CAST(:topics AS text[])) "
    "AS v(id, outcome, detail, topic) "
    "WHERE i.request_id = :request AND i.dead_letter_id = v.id"
)


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
class ItemOutcome:
    """What a replay did with one of its dead letters."""

    dead_letter_id: int
    outcome: Outcome
    detail: str | None
    topic: str | None  # where it was sent (None: not sent)


@dataclass(frozen=True, slots=True)
class ReplayEntry:
    """A dead letter's part in one replay request."""

    request_id: str
    actor: str
    created_at: datetime
    outcome: str
    detail: str | None
    topic: str | None
    at: datetime | None
    edit: Any = field(default=None)


def create(
    conn: Connection,
    *,
    request_id: str,
    actor: str,
    created_at: datetime,
    selection: dict[str, Any],
    target_topic: str | None,
    edit: dict[str, Any] | None,
    rate: float | None,
    force: bool,
) -> bool:
    """Record a running request without items; False when its id is taken (nothing is
    written then)."""
    statement = (
        insert(replay_requests)
        .values(
            id=request_id,
            actor=actor,
            created_at=created_at,
            state="running",
            selection=selection,
            target_topic=target_topic,
            edit=edit,
            rate=rate,
            force=force,
            total=0,
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(replay_requests.c.id)
    )
    return conn.execute(statement).first() is not None


def add_items(conn: Connection, *, request_id: str, dead_letter_ids: Sequence[int]) -> None:
    """Freeze a new request's selection: one pending item per dead letter, and its total."""
    if dead_letter_ids:
        conn.execute(
            insert(replay_items),
            [
                {"request_id": request_id, "dead_letter_id": i, "outcome": "pending"}
                for i in dead_letter_ids
            ],
        )
    conn.execute(
        update(replay_requests)
        .where(replay_requests.c.id == request_id)
        .values(total=len(dead_letter_ids))
    )


def get(conn: Connection, *, request_id: str) -> RequestState | None:
    """A request and its counts per outcome."""
    found = _states(conn, select(replay_requests).where(replay_requests.c.id == request_id))
    return found[0] if found else None


def newest(conn: Connection, *, limit: int) -> list[RequestState]:
    """The newest requests first."""
    query = select(replay_requests).order_by(replay_requests.c.created_at.desc()).limit(limit)
    return _states(conn, query)


def running(conn: Connection) -> list[str]:
    """Ids of the requests still running, oldest first."""
    query = (
        select(replay_requests.c.id)
        .where(replay_requests.c.state == "running")
        .order_by(replay_requests.c.created_at)
    )
    return list(conn.execute(query).scalars())


def pending_count(conn: Connection, *, request_id: str) -> int:
    """How many of the request's dead letters are not decided yet."""
    query = (
        select(func.count())
        .select_from(replay_items)
        .where(replay_items.c.request_id == request_id, replay_items.c.outcome == "pending")
    )
    return int(conn.execute(query).scalar_one())


def claim_pending(conn: Connection, *, request_id: str, limit: int) -> list[int]:
    """Up to ``limit`` pending items' dead-letter ids, lowest first, locked for the
    caller's transaction; items another transaction holds are skipped."""
    query = (
        select(replay_items.c.dead_letter_id)
        .where(replay_items.c.request_id == request_id, replay_items.c.outcome == "pending")
        .order_by(replay_items.c.dead_letter_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(conn.execute(query).scalars())


def pending_source_topics(conn: Connection, *, request_id: str) -> set[str]:
    """The source topics of the request's pending dead letters."""
    query = (
        select(dead_letters.c.source_topic)
        .distinct()
        .join(replay_items, replay_items.c.dead_letter_id == dead_letters.c.id)
        .where(replay_items.c.request_id == request_id, replay_items.c.outcome == "pending")
    )
    return set(conn.execute(query).scalars())


def record_outcomes(
    conn: Connection, *, request_id: str, outcomes: Sequence[ItemOutcome], at: datetime
) -> None:
    """Store what the replay did with these items, in one statement."""
    conn.execute(
        _RECORD_OUTCOMES,
        {
            "at": at,
            "request": request_id,
            "ids": [o.dead_letter_id for o in outcomes],
            "outcomes": [o.outcome for o in outcomes],
            "details": [o.detail for o in outcomes],
            "topics": [o.topic for o in outcomes],
        },
    )


def finish(
    conn: Connection, *, request_id: str, state: str, at: datetime, error: str | None
) -> None:
    """End a running request as ``done`` or ``failed`` (a finished one stays as it is)."""
    conn.execute(
        update(replay_requests)
        .where(replay_requests.c.id == request_id, replay_requests.c.state == "running")
        .values(state=state, finished_at=at, error=error)
    )


def replays_of(conn: Connection, *, dead_letter_id: int) -> list[ReplayEntry]:
    """Every replay request that included this dead letter, oldest first."""
    query = (
        select(
            replay_items.c.request_id,
            replay_requests.c.actor,
            replay_requests.c.created_at,
            replay_items.c.outcome,
            replay_items.c.detail,
            replay_items.c.topic,
            replay_items.c.at,
            replay_requests.c.edit,
        )
        .join(replay_requests, replay_requests.c.id == replay_items.c.request_id)
        .where(replay_items.c.dead_letter_id == dead_letter_id)
        .order_by(replay_requests.c.created_at)
    )
    return [ReplayEntry(*row) for row in conn.execute(query).all()]


def _states(conn: Connection, query: Select[Any]) -> list[RequestState]:
    """The requests ``query`` selects, in its order, with their counts per outcome (one
    more query for all of them)."""
    rows = conn.execute(query).all()
    if not rows:
        return []
    counted = conn.execute(
        select(replay_items.c.request_id, replay_items.c.outcome, func.count())
        .where(replay_items.c.request_id.in_([row.id for row in rows]))
        .group_by(replay_items.c.request_id, replay_items.c.outcome)
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for request_id, outcome, n in counted:
        counts.setdefault(request_id, {})[outcome] = int(n)
    return [_state(row, counts.get(row.id, {})) for row in rows]


def _state(row: Any, counts: dict[str, int]) -> RequestState:
    # The row's columns are the state's fields, but for the counts.
    every: dict[str, int] = {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}
    return RequestState(**row._mapping, counts=every)
