"""Searching workflows: filters, sorts, keyset pages and counts per status that stay fast
with millions of rows (migration 0019 builds the indexes each query walks; the values
asked for and answered are in orchestrator/store/workflow_pages.py).

A page never skips rows with OFFSET: a cursor is the position (sort value, id) of the
row a page ended (or, for the previous page, began) with, and the next page starts
right after it in an index. Workflows without the sort's time (not started, not
finished) come after the others, in either direction. Alternatives (several statuses,
every status of a goal type, a trigger's event type or source) are one ordered index
walk each, merged: an IN list or an OR would make PostgreSQL fetch and sort every match.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Select,
    Text,
    any_,
    bindparam,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    union_all,
)

from orchestrator.store.tables import workflows
from orchestrator.store.workflow_pages import (
    STATUSES,
    Cursor,
    Order,
    Sort,
    StatusCount,
    TimeRange,
    Trigger,
    WorkflowFilter,
    WorkflowPage,
    WorkflowSummary,
)
from orchestrator.workflow.state import WorkflowStatus

# Counts per status stop early: counting a million rows exactly takes longer than the
# page, and "10,000+" is all a person reads of it.
COUNT_CAP = 10_000  # per status, when an index holds every filter (no row is read)
SEARCH_COUNT_CAP = 2_000  # in all, when the rows must be read (text, trigger, ...)
PREFIX_IDS = 1_000  # an id prefix matching at most this many ids is looked up by id
MAX_GOAL_TYPES = 500
_SORT_COLUMNS = {
    "accepted": workflows.c.accepted_at,
    "started": workflows.c.started_at,
    "finished": workflows.c.finished_at,
}
_LIKE_ESCAPES = str.maketrans({"\\": "\\\\", "%": "\\%", "_": "\\_"})


class Indexed:
    """Expressions of the goal input that migration 0019 indexes. They must stay exactly
    as indexed (constants as SQL literals, not bind parameters), or PostgreSQL cannot
    match them to their indexes."""

    trigger = workflows.c.input.op("->")(literal_column("'_trigger'"))
    trigger_event_type = trigger.op("->>")(literal_column("'event_type'"))
    trigger_source = trigger.op("->>")(literal_column("'source'"))
    has_trigger = workflows.c.input.op("?")(literal_column("'_trigger'"))
    # The goal input's words, without the trigger record (triggered_by searches that).
    words = func.jsonb_to_tsvector(
        literal_column("'simple'::regconfig"),
        workflows.c.input.op("-")(literal_column("'_trigger'")),
        literal_column("""'["string", "numeric"]'::jsonb"""),
    )


def search(
    conn: Connection,
    *,
    filters: WorkflowFilter,
    sort: Sort = "accepted",
    order: Order = "desc",
    limit: int = 50,
    cursor: str | None = None,
) -> WorkflowPage:
    """A page of the workflows that match, in ``sort`` order (rows without that time
    last); ``cursor`` is a ``next_cursor`` or ``previous_cursor`` of an earlier page with
    the same filters and sort. ValueError for a cursor that is not one."""
    position = Cursor.decode(cursor) if cursor is not None else None
    listing = _Listing(conn, filters, sort, order)
    if position is None or not position.before:
        rows = listing.scan(position, forward=True, limit=limit + 1)
        items = rows[:limit]
        return WorkflowPage(
            items,
            next_cursor=listing.position(items[-1]).encode() if len(rows) > limit else None,
            previous_cursor=(
                listing.position(items[0], before=True).encode()
                if position is not None and items
                else None
            ),
        )
    rows = listing.scan(position, forward=False, limit=limit + 1)
    if len(rows) <= limit:
        # Back at the start: the first page, full, as a reader who paged forward saw it.
        return search(conn, filters=filters, sort=sort, order=order, limit=limit)
    items = rows[:limit][::-1]
    return WorkflowPage(
        items,
        next_cursor=listing.position(items[-1]).encode(),
        previous_cursor=listing.position(items[0], before=True).encode(),
    )


def count_by_status(conn: Connection, *, filters: WorkflowFilter) -> list[StatusCount]:
    """For every status, how many workflows match the filters other than the status (so
    each count can become a link that filters by it), in one statement that stops early.

    When an index holds every filter, each status is counted up to ``COUNT_CAP`` from
    the index alone. Otherwise the rows that match are read once, up to
    ``SEARCH_COUNT_CAP`` in all; if that many match, every count is a lower bound."""
    others = _conditions(conn, filters)
    if index_only(filters):
        counts = [
            select(func.count())
            .select_from(
                select(literal(1))
                .where(workflows.c.status == status, *others)
                .limit(COUNT_CAP)
                .subquery()
            )
            .scalar_subquery()
            for status in STATUSES
        ]
        row = conn.execute(select(*counts)).one()
        return [StatusCount(s, int(n), n >= COUNT_CAP) for s, n in zip(STATUSES, row, strict=True)]
    sample = select(workflows.c.status).where(*others).limit(SEARCH_COUNT_CAP).subquery()
    row = conn.execute(
        select(
            func.count(),
            *[func.count().filter(sample.c.status == status) for status in STATUSES],
        )
    ).one()
    capped = row[0] >= SEARCH_COUNT_CAP
    return [StatusCount(s, int(n), capped) for s, n in zip(STATUSES, row[1:], strict=True)]


def index_only(filters: WorkflowFilter) -> bool:
    """True when an index with the status holds every filter (type, accepted time, id),
    so counting reads no table rows."""
    return not (
        filters.id_prefix
        or filters.triggered_by
        or filters.text
        or filters.started != TimeRange()
        or filters.finished != TimeRange()
    )


def goal_types(conn: Connection, *, limit: int = MAX_GOAL_TYPES) -> list[str]:
    """The distinct goal types of all workflows, in order: one index probe per type (a
    loose index scan), not a pass over every row."""
    rows = conn.exec_driver_sql(_GOAL_TYPES, {"limit": limit}).all()
    return [row.type for row in rows]


_GOAL_TYPES = """
WITH RECURSIVE found(type) AS (
    (SELECT type FROM workflows ORDER BY type LIMIT 1)
    UNION ALL
    SELECT (SELECT w.type FROM workflows w WHERE w.type > found.type ORDER BY w.type LIMIT 1)
    FROM found WHERE found.type IS NOT NULL
)
SELECT type FROM found WHERE type IS NOT NULL LIMIT %(limit)s
"""
_COLUMNS = (
    workflows.c.id,
    workflows.c.type,
    workflows.c.status,
    workflows.c.accepted_at,
    workflows.c.started_at,
    workflows.c.finished_at,
    workflows.c.reason,
    Indexed.trigger.label("trigger"),
)


class _Listing:
    """The ordered walks one listing (filters, sort, order) is read with."""

    def __init__(self, conn: Connection, filters: WorkflowFilter, sort: Sort, order: Order):
        self.conn = conn
        self.column = _SORT_COLUMNS[sort]
        self.nullable = sort != "accepted"
        self.descending = order == "desc"
        self.conditions = _conditions(conn, filters, with_trigger=False)
        self.branches = _branches(filters)

    def position(self, item: WorkflowSummary, *, before: bool = False) -> Cursor:
        """The cursor of a row."""
        return Cursor(getattr(item, self.column.key), item.id, before)

    def scan(self, start: Cursor | None, *, forward: bool, limit: int) -> list[WorkflowSummary]:
        """Up to ``limit`` rows after ``start`` (or, not ``forward``, before it, nearest
        first): the rows with a sort value, then those without, in listing order."""
        segments = [False, True] if self.nullable else [False]
        if not forward:
            segments.reverse()
        if start is not None:
            segments = segments[segments.index(start.value is None) :]
        found: list[WorkflowSummary] = []
        for number, without_value in enumerate(segments):
            bound = start if number == 0 else None
            query = self._segment(without_value, bound, forward, limit - len(found))
            found += [_summary(row) for row in self.conn.execute(query).all()]
            if len(found) >= limit:
                break
        return found

    def _segment(
        self, without_value: bool, bound: Cursor | None, forward: bool, limit: int
    ) -> Select[Any]:
        """The rows with (or without) a sort value past ``bound``, in walking order."""
        descending = self.descending == forward  # walking back reverses the order
        conditions = list(self.conditions)
        if self.nullable:
            conditions.append(self.column.is_(None) if without_value else self.column.is_not(None))
        if without_value:
            keys = [workflows.c.id]
            if bound is not None:
                conditions.append(keys[0] < bound.id if descending else keys[0] > bound.id)
        else:
            keys = [self.column, workflows.c.id]
            if bound is not None:
                mine, theirs = tuple_(*keys), tuple_(bound.value, bound.id)
                conditions.append(mine < theirs if descending else mine > theirs)
        branches = [
            select(*_COLUMNS).where(*conditions, *branch).order_by(*_ordered(keys, descending))
            for branch in self.branches
        ]
        if len(branches) == 1:
            return branches[0].limit(limit)
        merged = union_all(*[branch.limit(limit) for branch in branches]).subquery()
        merged_keys = [merged.c[key.key] for key in keys]
        return select(merged).order_by(*_ordered(merged_keys, descending)).limit(limit)


def _ordered(keys: list[Any], descending: bool) -> list[Any]:
    return [key.desc() if descending else key.asc() for key in keys]


def _branches(filters: WorkflowFilter) -> list[list[ColumnElement[bool]]]:
    """The statuses and the trigger filter as disjoint alternatives, each of which one
    index walks in order: a status each (every status when a goal type is given, for
    the type-status index), the triggering event's type or else its source."""
    statuses = sorted(set(filters.statuses)) or (list(STATUSES) if filters.goal_type else [])
    by_status = [[workflows.c.status == status] for status in statuses] or [[]]
    by_trigger: list[list[ColumnElement[bool]]] = [[]]
    if filters.triggered_by:
        wanted = literal(filters.triggered_by)
        by_trigger = [
            [Indexed.has_trigger, Indexed.trigger_event_type == wanted],
            [
                Indexed.has_trigger,
                Indexed.trigger_source == wanted,
                Indexed.trigger_event_type.is_distinct_from(wanted),
            ],
        ]
    return [status + trigger for status in by_status for trigger in by_trigger]


def _conditions(
    conn: Connection, filters: WorkflowFilter, *, with_trigger: bool = True
) -> list[ColumnElement[bool]]:
    """The filters other than the statuses (and, ``with_trigger`` false, the trigger),
    as SQL conditions."""
    c = workflows.c
    found: list[ColumnElement[bool]] = []
    if filters.goal_type:
        found.append(c.type == filters.goal_type)
    if filters.goal_id:
        found.append(c.id == filters.goal_id)
    if filters.id_prefix:
        found.append(_id_prefix(conn, filters.id_prefix))
    if filters.triggered_by and with_trigger:
        wanted = literal(filters.triggered_by)
        found += [
            Indexed.has_trigger,
            or_(Indexed.trigger_event_type == wanted, Indexed.trigger_source == wanted),
        ]
    if filters.text:
        found.append(Indexed.words.op("@@")(func.websearch_to_tsquery("simple", filters.text)))
    for column, span in (
        (c.accepted_at, filters.accepted),
        (c.started_at, filters.started),
        (c.finished_at, filters.finished),
    ):
        if span.since is not None:
            found.append(column >= span.since)
        if span.until is not None:
            found.append(column < span.until)
    return found


def _id_prefix(conn: Connection, prefix: str) -> ColumnElement[bool]:
    """Ids that start with ``prefix``. PostgreSQL guesses how many ids a prefix matches
    from coarse statistics, and when it guesses high it walks the sort index instead
    of the prefix index; so the ids of a narrow prefix are looked up first."""
    matches = workflows.c.id.like(prefix.translate(_LIKE_ESCAPES) + "%", escape="\\")
    ids = conn.execute(select(workflows.c.id).where(matches).limit(PREFIX_IDS + 1)).scalars()
    found = list(ids)
    if len(found) > PREFIX_IDS:
        return matches
    return workflows.c.id == any_(bindparam("prefix_ids", found, type_=ARRAY(Text)))


def _summary(row: Any) -> WorkflowSummary:
    trigger = row.trigger if isinstance(row.trigger, dict) else None
    return WorkflowSummary(
        id=row.id,
        type=row.type,
        status=WorkflowStatus(row.status),
        accepted_at=row.accepted_at,
        finished_at=row.finished_at,
        reason=row.reason,
        started_at=row.started_at,
        trigger=Trigger(
            event_type=str(trigger.get("event_type", "")),
            source=str(trigger.get("source", "")),
            workflow_id=str(trigger["workflow_id"]) if trigger.get("workflow_id") else None,
        )
        if trigger is not None
        else None,
    )
