"""The workflow list's URL query (pure): read leniently, times checked, links written
back without defaults; and how run times read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from starlette.datastructures import QueryParams

from orchestrator.store.workflow_pages import TimeRange
from review_ui.console.workflow_query import WorkflowQuery
from review_ui.console.workflows import elapsed

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def parse(query: str) -> WorkflowQuery:
    return WorkflowQuery.parse(QueryParams(query), NOW)


def test_a_query_is_read_into_the_store_s_filter() -> None:
    query = parse(
        "status=running&status=failed&status=lost&type=support.ticket&id=ab&trigger=shop"
        "&text=refund&accepted_since=2h&finished_until=2026-05-31T08:00:00Z"
        "&sort=finished&order=asc&limit=20&cursor=abc"
    )

    filters = query.filters(NOW)

    assert filters.statuses == ("running", "failed")  # in the statuses' own order
    assert (filters.goal_type, filters.id_prefix, filters.triggered_by, filters.text) == (
        "support.ticket",
        "ab",
        "shop",
        "refund",
    )
    assert filters.accepted == TimeRange(since=NOW - timedelta(hours=2))
    assert filters.finished == TimeRange(until=datetime(2026, 5, 31, 8, 0, tzinfo=UTC))
    assert (query.sort, query.order, query.limit, query.cursor) == ("finished", "asc", 20, "abc")
    assert query.errors == {}
    assert query.filtered


@pytest.mark.parametrize(
    ("raw", "field", "default"),
    [("sort=size", "sort", "accepted"), ("order=up", "order", "desc"), ("limit=0", "limit", 50)],
)
def test_values_that_make_no_sense_mean_the_default(raw: str, field: str, default: object) -> None:
    assert getattr(parse(raw), field) == default


def test_a_time_that_cannot_be_read_is_an_error_for_its_field_and_not_applied() -> None:
    query = parse("started_since=soon&started_until=1d")

    assert list(query.errors) == ["started_since"]
    assert "neither a duration" in query.errors["started_since"]
    assert query.filters(NOW).started == TimeRange(until=NOW - timedelta(days=1))


def test_links_keep_the_query_and_a_new_filter_starts_at_the_first_page() -> None:
    query = parse("status=failed&type=t&cursor=abc&limit=20")

    assert query.url() == "/workflows?status=failed&type=t&cursor=abc&limit=20"
    assert query.url(cursor="xyz") == "/workflows?status=failed&type=t&cursor=xyz&limit=20"
    assert query.url(status=("running",)) == "/workflows?status=running&type=t&limit=20"
    assert query.url(status=()) == "/workflows?type=t&limit=20"
    assert parse("").url() == "/workflows"
    assert not parse("").filtered


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.85, "850 ms"),
        (12.34, "12.3 s"),
        (245, "4m 05s"),
        (7800, "2h 10m"),
        (3 * 86400 + 4 * 3600, "3d 4h"),
    ],
)
def test_run_times_read_like_people_say_them(seconds: float, text: str) -> None:
    assert elapsed(timedelta(seconds=seconds)) == text


def test_no_run_time_is_a_dash() -> None:
    assert elapsed(None) == "—"
