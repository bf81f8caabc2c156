"""The workflows pages: the searchable list of workflows (filters, counts per status,
keyset pages, live updates of the table) and one workflow's page."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orchestrator.store import workflow_search
from orchestrator.store.workflow_pages import ORDERS, SORTS, STATUSES
from review_ui.console import workflow_detail
from review_ui.console.common import Reader, frame
from review_ui.console.render import pages
from review_ui.console.workflow_query import WorkflowQuery
from review_ui.deps import ConnectionDep, StateDep
from waypost.events import utcnow

router = APIRouter(include_in_schema=False)
POLL_SECONDS = 5  # how often an open list refreshes its table
FILTER_FORM = "workflow-filters"  # the id of the list's filter form
# What the workflow page says after an action (review_ui/console/workflow_actions.py
# redirects back with ?notice=...); any other value says nothing.
NOTICES = {
    "cancelled": "Cancelled: its unfinished steps stop and later results are ignored.",
    "retried": "Retried: the step runs again.",
    "resumed": "Resumed: the workflow runs again from the step you chose.",
}


@router.get("/workflows")
def workflows_page(request: Request, conn: ConnectionDep, principal: Reader) -> Response:
    """The list (for htmx, the block it targets: the results, polled or filtered)."""
    now = utcnow()
    query = WorkflowQuery.parse(request.query_params, now)
    filters = query.filters(now)
    bad_cursor = False
    try:
        page = workflow_search.search(
            conn,
            filters=filters,
            sort=query.store_sort,
            order=query.store_order,
            limit=query.limit,
            cursor=query.cursor or None,
        )
    except ValueError:  # a cursor edited by hand, or from another version: start over
        bad_cursor = True
        page = workflow_search.search(
            conn, filters=filters, sort=query.store_sort, order=query.store_order
        )
    context = frame(
        principal,
        query=query,
        page=page,
        counts=workflow_search.count_by_status(conn, filters=filters),
        goal_types=workflow_search.goal_types(conn),
        statuses=STATUSES,
        sorts=SORTS,
        orders=ORDERS,
        bad_cursor=bad_cursor,
        poll_seconds=POLL_SECONDS,
        elapsed=elapsed,
        now=now,
        first_url=query.url(cursor="") if query.cursor else None,
    )
    # The filter form's request pushes the canonical URL (without its empty fields).
    from_form = request.headers.get("hx-trigger") == FILTER_FORM
    headers = {"HX-Push-Url": query.url()} if from_form else None
    return pages().render(request, "workflows.html", context, headers=headers)


@router.get("/workflows/{workflow_id}")
def workflow_page(
    workflow_id: str,
    request: Request,
    state: StateDep,
    conn: ConnectionDep,
    principal: Reader,
    notice: str | None = None,
) -> Response:
    """One workflow: its steps, escalations, dead letters and timeline."""
    detail = workflow_detail.load(conn, state, workflow_id)
    if detail is None:
        context = frame(
            principal,
            status=404,
            title="Workflow not found",
            detail=f"There is no workflow {workflow_id!r}; it may have been mistyped.",
        )
        return pages().render(request, "error.html", context, status=404)
    context = frame(
        principal,
        view=detail,
        workflow=detail.workflow,
        notice=NOTICES.get(notice or ""),
        elapsed=elapsed,
        now=utcnow(),
    )
    return pages().render(request, "workflow.html", context)


def elapsed(delta: timedelta | None) -> str:
    """A run time as people read it: ``850 ms``, ``12.3 s``, ``4m 05s``, ``2h 10m``,
    ``3d 4h``; ``—`` when there is none."""
    if delta is None:
        return "—"
    seconds = delta.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"
