"""The Governance pages (analysts and admins): policy decisions with the rule that
decided and spend against each budget (``/governance``), and the audit log of every
human and system action with CSV and JSON Lines exports of the filter
(``/governance/audit``). Read only: nothing here changes anything.

Lists are keyset pages, newest first ("Older" continues after the last row shown); the
filter forms swap the results in with htmx and work as plain GET forms without it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orchestrator.errors import FilterError
from orchestrator.store import audit_log
from review_ui.console.common import Governor, frame
from review_ui.console.governance_query import OUTCOMES, PAGE_SIZE, AuditQuery, DecisionQuery
from review_ui.console.render import pages
from review_ui.deps import StateDep
from review_ui.policy_limits import limits_of
from waypost.events import utcnow
from waypost.governance import browse
from waypost.governance.budgets import day_budgets
from waypost.governance.engine import utc_day
from waypost.keyset import Position

router = APIRouter(include_in_schema=False)


@router.get("/governance")
def governance_page(request: Request, state: StateDep, principal: Governor) -> Response:
    """Spend against budgets today, and the policy decisions of the filter."""
    query = DecisionQuery.parse(request.query_params)
    now = utcnow()
    day = utc_day(now)
    limits = limits_of(state.settings)
    rows: list[Any] = []
    error = None
    with state.engine.begin() as conn:
        spend = browse.spend_on(connection=conn, day=day)
        try:
            filters, after = query.filters(now), query.position()
        except (FilterError, ValueError) as exc:
            error = str(exc)
        else:
            rows = browse.find_decisions(
                connection=conn, filters=filters, after=after, limit=PAGE_SIZE + 1
            )
    shown = rows[:PAGE_SIZE]
    older = (
        query.older("/governance", Position(shown[-1].at, shown[-1].id))
        if len(rows) > PAGE_SIZE
        else None
    )
    context = frame(
        principal,
        query=query,
        outcomes=OUTCOMES,
        decisions=shown,
        older_url=older,
        newest_url=query.url("/governance", cursor="") if query.cursor else None,
        filter_error=error,
        day=day,
        budgets=day_budgets(spend, limits.policies),
        limits_known=limits.policies is not None,
        limits_source=limits.source,
    )
    return pages().render(request, "governance.html", context, status=422 if error else 200)


@router.get("/governance/audit")
def audit_page(request: Request, state: StateDep, principal: Governor) -> Response:
    """The audit log of the filter, with links to export it."""
    query = AuditQuery.parse(request.query_params)
    rows: list[audit_log.AuditRecord] = []
    error = None
    try:
        filters, after = query.filters(utcnow()), query.position()
    except (FilterError, ValueError) as exc:
        error = str(exc)
    else:
        with state.engine.begin() as conn:
            rows = audit_log.page(conn, filters=filters, after=after, limit=PAGE_SIZE + 1)
    shown = rows[:PAGE_SIZE]
    context = frame(
        principal,
        query=query,
        entries=shown,
        older_url=query.older("/governance/audit", shown[-1].position)
        if len(rows) > PAGE_SIZE
        else None,
        newest_url=query.url("/governance/audit", cursor="") if query.cursor else None,
        filter_error=error,
    )
    return pages().render(request, "governance_audit.html", context, status=422 if error else 200)
