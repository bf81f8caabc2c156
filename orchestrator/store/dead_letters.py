"""The dead-letter index: dead letters mirrored from every ``*.dlq`` topic, searched by
topic, error, capability, workflow, key, time and text, and their status (pending until
an analyst replays, resolves or discards one)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVarTuple

from sqlalchemy import ColumnElement, Connection, Select, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert

# A dead letter's replay history lives with the replays; the console reads it from here.
from orchestrator.store.replays import ReplayEntry as ReplayEntry
from orchestrator.store.tables import dead_letters
from waypost.bus.records import Headers, headers_from_json

Ts = TypeVarTuple("Ts")
Status = Literal["pending", "replayed", "resolved", "discarded"]
STATUSES: tuple[Status, ...] = ("pending", "replayed", "resolved", "discarded")
FACETS = ("source_topic", "error_class", "capability", "status")


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters; None means "any". Topics match with or without the
    installation's namespace (``tasks.echo`` and ``waypost.tasks.echo``)."""

    status: Status | None = "pending"
    topic: str | None = None  # the source topic
    error: str | None = None  # the error class
    capability: str | None = None
    workflow: str | None = None
    key: str | None = None
    event_type: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None  # words of the error message or the payload
    ids: tuple[int, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """The filter as stored with a replay request and shown in its audit row."""
        found: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if value is None or value == ():
                continue
            found[name] = value.isoformat() if isinstance(value, datetime) else value
        if "ids" in found:
            found["ids"] = list(found["ids"])
        return found


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead letter: the record as it was dead-lettered, and why."""

    id: int
    topic: str
    partition: int
    offset: int
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    consumer_group: str | None
    reason: str | None
    error_class: str | None
    error_message: str | None
    stack_digest: str | None
    attempts: int | None
    first_failure_at: datetime | None
    last_failure_at: datetime | None
    dead_lettered_at: datetime
    event_type: str | None
    event_id: str | None
    workflow_id: str | None
    task_id: str | None
    capability: str | None
    key: bytes | None
    value: bytes | None
    headers: Headers
    payload: Any
    replay_count: int
    replay_of: str | None
    status: Status
    status_by: str | None
    status_at: datetime | None
    status_reason: str | None
    replay_request_id: str | None
    indexed_at: datetime

    @property
    def key_text(self) -> str | None:
        """The key as text (None when absent; undecodable bytes replaced)."""
        return None if self.key is None else self.key.decode(errors="replace")


@dataclass(frozen=True, slots=True)
class DeadLetterPage:
    """A page of dead letters and how many match in all."""

    rows: list[DeadLetter]
    total: int
    page: int
    page_size: int


def index(conn: Connection, *, rows: Sequence[dict[str, Any]]) -> int:
    """Store dead letters (rows of the ``dead_letters`` table without id); a row whose
    fingerprint is stored already is skipped. Returns how many were new."""
    return len(index_new(conn, rows=rows))


def index_new(conn: Connection, *, rows: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """Like ``index``; returns (topic, error class) of each dead letter that was new."""
    if not rows:
        return []
    statement = (
        insert(dead_letters)
        .values(list(rows))
        .on_conflict_do_nothing(index_elements=["fingerprint"])
        .returning(dead_letters.c.topic, dead_letters.c.error_class)
    )
    return [(row.topic, row.error_class or "") for row in conn.execute(statement)]


def search(
    conn: Connection,
    *,
    filters: DeadLetterFilter,
    namespace: str,
    page: int = 1,
    page_size: int = 50,
    newest_first: bool = True,
) -> DeadLetterPage:
    """A page of the dead letters that match, newest first by default."""
    order = dead_letters.c.dead_lettered_at
    query = _filtered(select(dead_letters), filters, namespace).order_by(
        order.desc() if newest_first else order.asc(),
        dead_letters.c.id.desc() if newest_first else dead_letters.c.id.asc(),
    )
    rows = conn.execute(query.limit(page_size).offset((page - 1) * page_size)).all()
    return DeadLetterPage(
        [_dead_letter(r) for r in rows], count(conn, filters, namespace), page, page_size
    )


def count(conn: Connection, filters: DeadLetterFilter, namespace: str) -> int:
    """How many dead letters match."""
    query = _filtered(select(func.count()).select_from(dead_letters), filters, namespace)
    return int(conn.execute(query).scalar_one())


def matching_ids(
    conn: Connection, *, filters: DeadLetterFilter, namespace: str, limit: int | None = None
) -> list[int]:
    """Ids of the dead letters that match, oldest first (the order a replay sends them)."""
    query = _filtered(select(dead_letters.c.id), filters, namespace).order_by(
        dead_letters.c.dead_lettered_at, dead_letters.c.id
    )
    if limit is not None:
        query = query.limit(limit)
    return [row.id for row in conn.execute(query).all()]


def facets(
    conn: Connection, *, filters: DeadLetterFilter, namespace: str
) -> dict[str, list[tuple[str, int]]]:
    """For each facet (source topic, error class, capability, status), its values among
    the dead letters that match the other filters, with counts, most frequent first."""
    found: dict[str, list[tuple[str, int]]] = {}
    without = {
        "source_topic": "topic",
        "error_class": "error",
        "capability": "capability",
        "status": "status",
    }
    for name in FACETS:
        column = dead_letters.c[name]
        others = _replace(filters, **{without[name]: None})
        query = _filtered(
            select(column, func.count()).select_from(dead_letters), others, namespace
        ).where(column.is_not(None))
        rows = conn.execute(query.group_by(column).order_by(func.count().desc(), column)).all()
        found[name] = [(str(value), int(n)) for value, n in rows]
    return found


def histogram(
    conn: Connection,
    *,
    filters: DeadLetterFilter,
    namespace: str,
    start: datetime,
    end: datetime,
    buckets: int,
) -> list[int]:
    """How many matching dead letters fell in each of ``buckets`` equal slices of
    [start, end)."""
    width = max((end - start).total_seconds() / buckets, 1e-6)
    bucket = func.floor(
        func.extract("epoch", dead_letters.c.dead_lettered_at - start) / width
    ).label("bucket")
    query = (
        _filtered(select(bucket, func.count()).select_from(dead_letters), filters, namespace)
        .where(dead_letters.c.dead_lettered_at >= start, dead_letters.c.dead_lettered_at < end)
        .group_by(bucket)
    )
    counts = [0] * buckets
    for slot, n in conn.execute(query).all():
        counts[min(int(slot), buckets - 1)] += int(n)
    return counts


def stats(conn: Connection) -> list[tuple[str, str, str, int]]:
    """(source topic, error class, status, count) of every dead letter."""
    error = func.coalesce(dead_letters.c.error_class, "")
    query = (
        select(dead_letters.c.source_topic, error, dead_letters.c.status, func.count())
        .group_by(dead_letters.c.source_topic, error, dead_letters.c.status)
        .order_by(dead_letters.c.source_topic, error, dead_letters.c.status)
    )
    return [(t, e, s, int(n)) for t, e, s, n in conn.execute(query).all()]


def get(conn: Connection, *, dead_letter_id: int) -> DeadLetter | None:
    """One dead letter."""
    row = conn.execute(select(dead_letters).where(dead_letters.c.id == dead_letter_id)).first()
    return None if row is None else _dead_letter(row)


def by_ids(conn: Connection, *, ids: Sequence[int]) -> dict[int, DeadLetter]:
    """These dead letters (those that exist), by id."""
    return {row.id: _dead_letter(row) for row in conn.execute(_by_ids(ids)).all()}


def lock(conn: Connection, *, ids: Sequence[int]) -> dict[int, DeadLetter]:
    """Dead letters locked for the caller's transaction (concurrent replays wait)."""
    query = _by_ids(ids).with_for_update()
    return {row.id: _dead_letter(row) for row in conn.execute(query).all()}


def set_status(
    conn: Connection,
    *,
    ids: Sequence[int],
    status: Status,
    actor: str,
    at: datetime,
    reason: str | None = None,
    request_id: str | None = None,
) -> list[int]:
    """Move pending dead letters to ``status``; returns the ids that moved (the others
    were not pending any more)."""
    values: dict[str, Any] = {
        "status": status,
        "status_by": actor,
        "status_at": at,
        "status_reason": reason,
    }
    if request_id is not None:
        values["replay_request_id"] = request_id
    statement = (
        update(dead_letters)
        .where(dead_letters.c.id.in_(list(ids)), dead_letters.c.status == "pending")
        .values(**values)
        .returning(dead_letters.c.id)
    )
    return sorted(row.id for row in conn.execute(statement).all())


def _filtered(query: Select[*Ts], filters: DeadLetterFilter, namespace: str) -> Select[*Ts]:
    c = dead_letters.c
    conditions: list[ColumnElement[bool]] = []
    if filters.status is not None:
        conditions.append(c.status == filters.status)
    if filters.topic:
        conditions.append(_topic_matches(c.source_topic, filters.topic, namespace))
    if filters.error:
        conditions.append(c.error_class == filters.error)
    if filters.capability:
        conditions.append(c.capability == filters.capability)
    if filters.workflow:
        conditions.append(c.workflow_id == filters.workflow)
    if filters.key is not None:
        conditions.append(c.key == filters.key.encode())
    if filters.event_type:
        short = filters.event_type.removeprefix("waypost.")
        conditions.append(c.event_type.in_([short, f"waypost.{short}"]))
    if filters.reason:
        conditions.append(c.reason == filters.reason)
    if filters.since is not None:
        conditions.append(c.dead_lettered_at >= filters.since)
    if filters.until is not None:
        conditions.append(c.dead_lettered_at < filters.until)
    if filters.text:
        words = func.websearch_to_tsquery("simple", filters.text)
        conditions.append(or_(c.search.op("@@")(words), c.event_id == filters.text))
    if filters.ids:
        conditions.append(c.id.in_(list(filters.ids)))
    return query.where(and_(*conditions)) if conditions else query


def _by_ids(ids: Sequence[int]) -> Select[Any]:
    return select(dead_letters).where(dead_letters.c.id.in_(list(ids))).order_by(dead_letters.c.id)


def _topic_matches(column: Any, topic: str, namespace: str) -> ColumnElement[bool]:
    names = {topic, f"{namespace}.{topic}"}
    return column.in_(sorted(names))  # type: ignore[no-any-return]


def _replace(filters: DeadLetterFilter, **changes: Any) -> DeadLetterFilter:
    values = {name: getattr(filters, name) for name in filters.__slots__}
    values.update(changes)
    return DeadLetterFilter(**values)


def _dead_letter(row: Any) -> DeadLetter:
    values = dict(row._mapping)
    values.pop("fingerprint", None)
    values.pop("search", None)
    values["headers"] = headers_from_json(values["headers"])
    return DeadLetter(**values)
