"""The review inbox: filters, counts, a page of escalations (each with the summary line
its playbook step wrote, if any), and the live-update poll. ``cursor`` names the row
the keyboard cursor starts on: the way back from an escalation (``g i``) keeps it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from orchestrator.store import escalations as escalation_rows
from orchestrator.store import review_flow
from review_ui.auth.principal import Principal
from review_ui.console.common import Reader, frame, see_other, url_text
from review_ui.console.query import (
    CURSOR,
    ME,
    PRIORITIES,
    SLAS,
    SORTS,
    STATUSES,
    UNASSIGNED,
    InboxQuery,
)
from review_ui.console.render import is_htmx, pages
from review_ui.deps import ConnectionDep
from waypost.events import utcnow

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one escalation of a bulk action."""

    escalation_id: str
    summary: str
    ok: bool
    message: str


@dataclass(frozen=True, slots=True)
class BulkResult:
    """The outcome of a bulk action, shown above the list."""

    title: str
    outcomes: tuple[Outcome, ...] = ()
    error: str | None = None


def inbox_context(
    conn: Connection,
    principal: Principal,
    query: InboxQuery,
    now: datetime,
    *,
    result: BulkResult | None = None,
    reason: str = "",
    cursor: str = "",
) -> dict[str, Any]:
    """Everything the inbox page shows for ``query``, the cursor on the row ``cursor``."""
    filters = query.filters(principal.name)
    found = escalation_rows.inbox(
        conn,
        filters=filters,
        now=now,
        sort=query.store_sort,
        page=query.page,
        page_size=query.page_size,
    )
    return frame(
        principal,
        query=query,
        rows=found.rows,
        lines=review_flow.step_summaries(conn, ids=[row.id for row in found.rows]),
        cursor=cursor,
        total=found.total,
        pages=found.pages,
        counts=escalation_rows.counts(conn, filters=filters, now=now),
        facets=escalation_rows.facets(conn),
        choices={
            "status": STATUSES,
            "priority": PRIORITIES,
            "sla": SLAS,
            "sort": SORTS,
            "me": ME,
            "unassigned": UNASSIGNED,
        },
        page_numbers=page_window(query.page, found.pages),
        now=now,
        since=now.isoformat(),
        new_count=0,
        show_url=query.url(sort="newest"),
        result=result,
        reason=reason,
    )


def page_window(page: int, pages: int, width: int = 2) -> list[int | None]:
    """Page numbers to link: the first, the last and ``width`` around the current one;
    None marks a gap."""
    wanted = {1, pages, *range(page - width, page + width + 1)}
    numbers: list[int | None] = []
    previous = 0
    for number in sorted(n for n in wanted if 1 <= n <= pages):
        if number - previous > 1:
            numbers.append(None)
        numbers.append(number)
        previous = number
    return numbers


@router.get("/inbox")
def inbox(request: Request, conn: ConnectionDep, principal: Reader) -> Response:
    """The inbox (for htmx, the block it targets: the results or the whole main area)."""
    query = InboxQuery.parse(request.query_params)
    cursor = url_text(request.query_params, CURSOR, 200)
    context = inbox_context(conn, principal, query, utcnow(), cursor=cursor)
    return pages().render(request, "inbox.html", context)


@router.get("/inbox/updates")
def updates(request: Request, conn: ConnectionDep, principal: Reader) -> Response:
    """How many escalations matching the filters opened since the list was shown."""
    query = InboxQuery.parse(request.query_params)
    if not is_htmx(request):
        return see_other(query.url())
    now = utcnow()
    since = _moment(request.query_params.get("since")) or now
    filters = query.filters(principal.name)
    newer = escalation_rows.inbox(
        conn,
        filters=replace(filters, opened_after=since),
        now=now,
        page_size=1,
    ).total
    context = frame(principal, query=query, new_count=newer, show_url=query.url(sort="newest"))
    return pages().render(request, "inbox.html", context, block="updates")


def _moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
