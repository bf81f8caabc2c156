"""Workflow search on the real PostgreSQL: every filter, every sort in both directions,
keyset pages forward and back (each row exactly once), counts per status, goal types,
and the indexes the queries walk (EXPLAIN on a table big enough to need them)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, insert, text

from orchestrator.store import workflow_search as search_rows
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.tables import workflows
from orchestrator.store.workflow_pages import Cursor, Order, Sort, TimeRange, WorkflowFilter
from waypost.db import make_engine
from waypost.migrate import upgrade
from waypost.stack.postgres import EmbeddedPostgres

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def trigger(event_type: str, source: str, workflow_id: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": "ev",
        "event_type": event_type,
        "source": source,
        "topic": "workflow.events",
        "depth": 1,
    }
    if workflow_id:
        record["workflow_id"] = workflow_id
    return record


# id, type, status, accepted (minutes), started, finished, input
ROWS: list[tuple[str, str, str, float, float | None, float | None, dict[str, Any]]] = [
    ("a1", "refund", "completed", 1, 1.5, 4, {"subject": "Refund parcel", "amount": 12}),
    ("a2", "refund", "failed", 2, 2.5, 3, {"subject": "Refund kettle", "customer": "cus_9"}),
    ("a3", "ticket", "running", 3, 3.5, None, {"subject": "Login broken"}),
    ("b4", "ticket", "accepted", 4, None, None, {"subject": "Parcel late"}),
    (
        "b5",
        "ticket",
        "completed",
        5,
        5.5,
        20,
        {"subject": "Follow up", "_trigger": trigger("shop.order.created", "shop/orders")},
    ),
    (
        "b6",
        "refund",
        "failed",
        6,
        6.5,
        7,
        {
            "subject": "Refund again",
            "_trigger": trigger("waypost.workflow.failed", "waypost/orchestrator", "a2"),
        },
    ),
    ("c7", "ticket", "cancelled", 7, 7.5, 8, {"subject": "Cancel me 50%_off"}),
    ("c8", "ticket", "planning", 8, None, None, {"subject": "Plan it"}),
    ("c9", "refund", "completed", 9, 9.5, 10, {"subject": "kettle descaler"}),
    ("ca", "ticket", "completed", 9, 9.2, 10, {"subject": "same accepted time as c9"}),
]


def load(engine: Engine, rows: list[tuple[Any, ...]] = ROWS) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(workflows),
            [
                {
                    "id": workflow_id,
                    "type": goal_type,
                    "status": status,
                    "input": goal_input,
                    "reason": "it broke" if status == "failed" else None,
                    "accepted_at": at(accepted),
                    "started_at": at(started) if started is not None else None,
                    "finished_at": at(finished) if finished is not None else None,
                    "updated_at": at(accepted),
                }
                for workflow_id, goal_type, status, accepted, started, finished, goal_input in rows
            ],
        )


@contextmanager
def migrated(postgres: EmbeddedPostgres) -> Iterator[Engine]:
    """An engine on a freshly migrated schema of its own (dropped afterwards)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = make_engine(postgres.url(), schema=name, pool_size=1)
    upgrade(engine, name)
    try:
        yield engine
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        engine.dispose()


@pytest.fixture(scope="module")
def listed(postgres: EmbeddedPostgres) -> Iterator[Engine]:
    """ROWS in a schema the module's tests share (they only read)."""
    with migrated(postgres) as engine:
        load(engine)
        yield engine


@pytest.fixture
def conn(listed: Engine) -> Iterator[Connection]:
    with listed.connect() as connection:
        yield connection


def ids(conn: Connection, **kwargs: Any) -> list[str]:
    filters = kwargs.pop("filters", WorkflowFilter())
    return [item.id for item in search_rows.search(conn, filters=filters, **kwargs).items]


def expected_order(sort: Sort, order: Order, filters: WorkflowFilter | None = None) -> list[str]:
    """The listing order computed in Python: rows with the time first, by (time, id)
    in the direction asked, then rows without it by id in that direction."""
    column = {"accepted": 3, "started": 4, "finished": 5}[sort]
    rows = [r for r in ROWS if filters is None or r[2] in filters.statuses]
    with_value = sorted((r for r in rows if r[column] is not None), key=lambda r: (r[column], r[0]))
    without = sorted((r for r in rows if r[column] is None), key=lambda r: r[0])
    if order == "desc":
        with_value.reverse()
        without.reverse()
    return [r[0] for r in with_value + without]


# --- filters -------------------------------------------------------------------------


def test_newest_first_by_default_ties_broken_by_id(conn: Connection) -> None:
    assert ids(conn) == ["ca", "c9", "c8", "c7", "b6", "b5", "b4", "a3", "a2", "a1"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (WorkflowFilter(statuses=("failed",)), ["b6", "a2"]),
        (WorkflowFilter(statuses=("failed", "cancelled", "running")), ["c7", "b6", "a3", "a2"]),
        (WorkflowFilter(goal_type="refund"), ["c9", "b6", "a2", "a1"]),
        (WorkflowFilter(goal_type="refund", statuses=("completed",)), ["c9", "a1"]),
        (WorkflowFilter(goal_type="nothing"), []),
        (WorkflowFilter(goal_id="b5"), ["b5"]),
        (WorkflowFilter(id_prefix="c"), ["ca", "c9", "c8", "c7"]),
        (WorkflowFilter(id_prefix="C"), []),  # ids are case-sensitive
        (WorkflowFilter(id_prefix="%"), []),  # LIKE wildcards are literal
        (WorkflowFilter(id_prefix="_"), []),
        (WorkflowFilter(triggered_by="shop.order.created"), ["b5"]),
        (WorkflowFilter(triggered_by="waypost/orchestrator"), ["b6"]),
        (WorkflowFilter(triggered_by="shop/orders", statuses=("failed",)), []),
        (WorkflowFilter(text="refund"), ["b6", "a2", "a1"]),
        (WorkflowFilter(text="KETTLE"), ["c9", "a2"]),
        (WorkflowFilter(text="cus_9"), ["a2"]),
        (WorkflowFilter(text="12"), ["a1"]),  # numbers are words too
        (WorkflowFilter(text='"refund parcel"'), ["a1"]),
        (WorkflowFilter(text="refund -kettle"), ["b6", "a1"]),
        (WorkflowFilter(text="ev"), []),  # the trigger record's values are not input words
        (WorkflowFilter(text="refund", statuses=("failed",)), ["b6", "a2"]),
        (WorkflowFilter(accepted=TimeRange(at(3), at(6))), ["b5", "b4", "a3"]),
        (WorkflowFilter(started=TimeRange(since=at(7))), ["ca", "c9", "c7"]),
        (WorkflowFilter(finished=TimeRange(until=at(5))), ["a2", "a1"]),
        (WorkflowFilter(finished=TimeRange(at(7), at(10.5))), ["ca", "c9", "c7", "b6"]),
    ],
)
def test_each_filter(conn: Connection, filters: WorkflowFilter, expected: list[str]) -> None:
    assert ids(conn, filters=filters) == expected


def test_a_prefix_matching_many_ids_is_still_a_prefix(engine: Engine) -> None:
    many = [
        (f"p{n:04d}", "bulk", "completed", 20 + n / 100, None, None, {})
        for n in range(search_rows.PREFIX_IDS + 5)
    ]
    load(engine, many)

    with engine.connect() as conn:
        found = search_rows.search(conn, filters=WorkflowFilter(id_prefix="p"), limit=200)
        narrow = search_rows.search(conn, filters=WorkflowFilter(id_prefix="p00"), limit=200)

    assert [w.id for w in found.items][:2] == [f"p{n:04d}" for n in (1004, 1003)]
    assert found.next_cursor is not None

    assert [w.id for w in narrow.items] == [f"p{n:04d}" for n in range(99, -1, -1)]


def test_rows_carry_their_trigger_and_duration(conn: Connection) -> None:
    page = search_rows.search(conn, filters=WorkflowFilter(id_prefix="b"))
    by_id = {item.id: item for item in page.items}

    assert by_id["b6"].trigger is not None
    assert (by_id["b6"].trigger.event_type, by_id["b6"].trigger.workflow_id) == (
        "waypost.workflow.failed",
        "a2",
    )
    assert by_id["b4"].trigger is None
    assert by_id["b6"].duration == timedelta(seconds=30)
    assert by_id["b4"].duration is None
    assert by_id["b6"].reason == "it broke"


# --- sorts and pages -----------------------------------------------------------------


@pytest.mark.parametrize("sort", ["accepted", "started", "finished"])
@pytest.mark.parametrize("order", ["desc", "asc"])
def test_each_sort_puts_rows_without_the_time_last(
    conn: Connection, sort: Sort, order: Order
) -> None:
    assert ids(conn, sort=sort, order=order) == expected_order(sort, order)


@pytest.mark.parametrize("sort", ["accepted", "started", "finished"])
@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("limit", [1, 3, 4])
@pytest.mark.parametrize("statuses", [(), ("completed", "accepted", "failed")])
def test_pages_forward_then_back_return_every_row_once(
    conn: Connection, sort: Sort, order: Order, limit: int, statuses: tuple[str, ...]
) -> None:
    filters = WorkflowFilter(statuses=statuses)
    wanted = expected_order(sort, order, filters if statuses else None)
    pages: list[list[str]] = []
    cursor: str | None = None
    page = None
    while True:
        page = search_rows.search(
            conn, filters=filters, sort=sort, order=order, limit=limit, cursor=cursor
        )
        pages.append([item.id for item in page.items])
        assert (page.previous_cursor is None) == (len(pages) == 1)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        assert len(pages) <= len(wanted), "pagination does not end"

    assert [i for p in pages for i in p] == wanted
    assert len(pages) == -(-len(wanted) // limit)
    # Back from the last page: the same pages, in reverse, ending at the first.
    back = [pages[-1]]
    while page.previous_cursor is not None:
        page = search_rows.search(
            conn, filters=filters, sort=sort, order=order, limit=limit, cursor=page.previous_cursor
        )
        back.append([item.id for item in page.items])
    assert back[::-1] == pages


def test_a_cursor_past_the_end_gives_an_empty_page(conn: Connection) -> None:
    cursor = Cursor(at(0), "a0").encode()

    page = search_rows.search(conn, filters=WorkflowFilter(), cursor=cursor)

    assert (page.items, page.next_cursor, page.previous_cursor) == ([], None, None)


@pytest.mark.parametrize(
    "garbage",
    ["", "!!!", base64.urlsafe_b64encode(b"2026-03-01T12:00:00|x").decode(), "bm8gc2Vw"],
    ids=["empty", "punctuation", "no-zone", "no-separator"],
)
def test_a_cursor_that_is_not_one_is_refused(conn: Connection, garbage: str) -> None:
    with pytest.raises(ValueError, match="invalid cursor"):
        search_rows.search(conn, filters=WorkflowFilter(), cursor=garbage)


def test_list_page_keeps_its_old_contract(conn: Connection) -> None:
    page = workflow_rows.list_page(conn, status="completed", limit=2)

    assert [w.id for w in page.items] == ["ca", "c9"]
    assert page.next_cursor is not None
    assert workflow_rows.decode_cursor(page.next_cursor) == (at(9), "c9")


# --- counts and goal types -----------------------------------------------------------


def counts(conn: Connection, filters: WorkflowFilter) -> dict[str, tuple[int, bool]]:
    return {
        c.status: (c.count, c.capped)
        for c in search_rows.count_by_status(conn, filters=filters)
        if c.count or c.capped
    }


def test_counts_per_status_ignore_the_status_filter(conn: Connection) -> None:
    assert counts(conn, WorkflowFilter(statuses=("failed",))) == {
        "accepted": (1, False),
        "planning": (1, False),
        "running": (1, False),
        "completed": (4, False),
        "failed": (2, False),
        "cancelled": (1, False),
    }
    assert counts(conn, WorkflowFilter(goal_type="refund")) == {
        "completed": (2, False),
        "failed": (2, False),
    }


@pytest.mark.parametrize(
    "filters",
    [
        WorkflowFilter(text="refund"),
        WorkflowFilter(id_prefix="a"),
        WorkflowFilter(triggered_by="waypost/orchestrator"),
        WorkflowFilter(finished=TimeRange(until=at(9))),
    ],
)
def test_counts_under_filters_that_read_rows_agree_with_the_list(
    conn: Connection, filters: WorkflowFilter
) -> None:
    listed = search_rows.search(conn, filters=filters, limit=100).items
    expected: dict[str, tuple[int, bool]] = {}
    for item in listed:
        expected[item.status] = (expected.get(item.status, (0, False))[0] + 1, False)

    assert counts(conn, filters) == expected


def test_counts_stop_at_their_cap(conn: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_rows, "COUNT_CAP", 3)
    monkeypatch.setattr(search_rows, "SEARCH_COUNT_CAP", 3)

    assert counts(conn, WorkflowFilter())["completed"] == (3, True)
    assert counts(conn, WorkflowFilter())["failed"] == (2, False)
    found = counts(conn, WorkflowFilter(text="refund"))  # three match: the cap is reached
    assert found == {"completed": (1, True), "failed": (2, True)} | {
        s: (0, True) for s in ("accepted", "planning", "running", "cancelled")
    }


def test_goal_types_are_distinct_and_sorted(conn: Connection) -> None:
    assert search_rows.goal_types(conn) == ["refund", "ticket"]
    assert search_rows.goal_types(conn, limit=1) == ["refund"]


# --- the indexes ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def big(postgres: EmbeddedPostgres) -> Iterator[Connection]:
    """20,000 workflows (vacuumed and analysed), enough that a query without its index
    scans the table; a fortieth failed, another cancelled."""
    with migrated(postgres) as engine:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO workflows (id, type, status, input, accepted_at, started_at, "
                    "finished_at, updated_at) "
                    "SELECT md5(n::text), 'type' || (n % 8), "
                    "CASE n % 40 WHEN 0 THEN 'failed' WHEN 1 THEN 'cancelled' "
                    "WHEN 2 THEN 'running' ELSE 'completed' END, "
                    "CASE WHEN n % 10 = 0 THEN jsonb_build_object('subject', 'word' || n, "
                    "'_trigger', jsonb_build_object('event_type', 'e' || (n % 3), 'source', 's')) "
                    "ELSE jsonb_build_object('subject', 'word' || n) END, "
                    "t, t + interval '1 second', "
                    "CASE WHEN n % 40 = 2 THEN NULL ELSE t + interval '1 minute' END, t "
                    "FROM (SELECT n, timestamptz '2026-01-01' + n * interval '1 minute' AS t "
                    "FROM generate_series(1, 20000) n) s"
                )
            )
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            # Index-only scans need the visibility map that VACUUM writes.
            connection.exec_driver_sql("VACUUM ANALYZE workflows")
            yield connection


def plans(conn: Connection, run: Any) -> list[str]:
    """The plans of every statement ``run`` executes (EXPLAIN, same parameters)."""
    statements: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    event.listen(conn.engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(conn.engine, "before_cursor_execute", capture)
    return [
        "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + s, p)) for s, p in statements
    ]


@pytest.mark.parametrize(
    ("name", "kwargs", "index"),
    [
        ("first page", {}, "workflows_accepted"),
        ("status", {"filters": WorkflowFilter(statuses=("failed",))}, "workflows_status_accepted"),
        ("type", {"filters": WorkflowFilter(goal_type="type3")}, "workflows_type_status"),
        ("started", {"sort": "started", "order": "asc"}, "workflows_started"),
        ("finished", {"sort": "finished"}, "workflows_finished"),
        ("text", {"filters": WorkflowFilter(text="word77")}, "workflows_input_search"),
        ("trigger", {"filters": WorkflowFilter(triggered_by="e1")}, "workflows_trigger_event"),
        ("source", {"filters": WorkflowFilter(triggered_by="s")}, "workflows_trigger_source"),
    ],
)
def test_each_query_walks_its_index(
    big: Connection, name: str, kwargs: dict[str, Any], index: str
) -> None:
    found = plans(big, lambda: search_rows.search(big, **{"filters": WorkflowFilter(), **kwargs}))

    assert any(index in plan for plan in found), f"{name}: {found}"
    assert not any("Seq Scan" in plan for plan in found), f"{name}: {found}"


def test_a_deep_page_starts_at_its_cursor_in_the_index(big: Connection) -> None:
    deep = Cursor(datetime(2026, 1, 3, tzinfo=UTC), "zz").encode()

    (plan,) = plans(big, lambda: search_rows.search(big, filters=WorkflowFilter(), cursor=deep))

    assert "Index Cond: (ROW(accepted_at, id) < ROW(" in plan, plan
    assert "Sort" not in plan, plan


def test_counts_read_only_the_index(big: Connection) -> None:
    (plan,) = plans(big, lambda: search_rows.count_by_status(big, filters=WorkflowFilter()))

    # A rare status is counted from the index; one most rows have may be read from the
    # table instead, as cheap when the walk stops after COUNT_CAP rows either way.
    for status in ("failed", "cancelled", "running"):
        assert f"Index Cond: (status = '{status}'::text)" in plan, plan
    assert plan.count("Index Only Scan using workflows_status_accepted") >= 5, plan
    assert plan.count("->  Limit") == 6, plan
