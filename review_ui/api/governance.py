"""GET /api/v1/policy-decisions, /api/v1/budgets and /api/v1/audit: governance and the
audit log (analysts and admins).

Lists are keyset pages, newest first: ``next_cursor`` of one page is the ``cursor`` of
the next. The audit log also streams whole as CSV or JSON Lines (``format``), every entry
of the filter, for an export.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse

from orchestrator.dead_letters.filters import parse_time
from orchestrator.errors import FilterError
from orchestrator.store import audit_log
from orchestrator.store.audit_log import AuditFilter
from review_ui.api.governance_models import (
    AgentBudgetPublic,
    AuditEventPublic,
    AuditPagePublic,
    BudgetsPublic,
    PolicyDecisionPagePublic,
    PolicyDecisionPublic,
)
from review_ui.auth.principal import Principal, api_roles
from review_ui.auth.roles import GOVERNANCE
from review_ui.deps import AppState, ConnectionDep, StateDep
from review_ui.openapi import NO_NUL, problems
from review_ui.policy_limits import limits_of
from review_ui.problems import Problem
from waypost import exports, keyset
from waypost.governance import browse
from waypost.governance.budgets import day_budgets
from waypost.governance.engine import utc_day
from waypost.keyset import Position

router = APIRouter(tags=["governance"])
Governor = Annotated[Principal, Depends(api_roles(GOVERNANCE))]
Text = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]
When = Annotated[
    str | None,
    Query(
        max_length=64,
        pattern=NO_NUL,
        description="A duration back from now (30m, 2h, 7d) or an ISO time (UTC without a zone).",
    ),
]
Cursor = Annotated[
    str | None,
    Query(max_length=200, pattern=NO_NUL, description="next_cursor of the previous page."),
]
Limit = Annotated[int, Query(ge=1, le=500, description="Most items on the page.")]
_WHY = {
    422: "A parameter breaks the schema, a time or day cannot be read, or the cursor "
    "is not one this API made; `detail` says which."
}


@router.get(
    "/policy-decisions",
    response_model=PolicyDecisionPagePublic,
    responses=problems(401, 403, 422, 429, 503, why=_WHY),
)
def list_policy_decisions(
    connection: ConnectionDep,
    _: Governor,
    agent: Text = None,
    action: Text = None,
    outcome: Annotated[Literal["allow", "deny", "require_approval"] | None, Query()] = None,
    since: When = None,
    until: When = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> PolicyDecisionPagePublic:
    """Policy decisions (every one an agent's action got, whatever its outcome), newest
    first, each with the rule that decided (policy, version, path, file and line) and
    the reason. `since` is inclusive, `until` exclusive."""
    start, end = _time_range(since, until)
    filters = browse.DecisionFilter(agent, action, outcome, start, end)
    rows = browse.find_decisions(
        connection=connection, filters=filters, after=_position(cursor), limit=limit + 1
    )
    shown = rows[:limit]
    more = len(rows) > limit
    return PolicyDecisionPagePublic(
        items=[PolicyDecisionPublic.of(row) for row in shown],
        next_cursor=keyset.encode(Position(shown[-1].at, shown[-1].id)) if more else None,
    )


@router.get(
    "/budgets", response_model=BudgetsPublic, responses=problems(401, 403, 422, 429, 503, why=_WHY)
)
def list_budgets(
    connection: ConnectionDep,
    state: StateDep,
    _: Governor,
    day: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description="A UTC day; default today."),
    ] = None,
) -> BudgetsPublic:
    """What each agent spent on a UTC day (tokens and USD), against the per-day limits of
    the policies that govern it, when this app reads the policy files (`limits_known`);
    otherwise `limits_source` says where the limits are."""
    shown_day = _day(day)
    limits = limits_of(state.settings)
    spend = browse.spend_on(connection=connection, day=shown_day)
    return BudgetsPublic(
        day=shown_day,
        limits_known=limits.policies is not None,
        limits_source=limits.source,
        items=[AgentBudgetPublic.of(b) for b in day_budgets(spend, limits.policies)],
    )


@router.get(
    "/audit",
    response_model=AuditPagePublic,
    responses={
        200: {
            "description": "A page of the audit log (json), or every entry of the filter "
            "as a file (csv, jsonl).",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        },
        **problems(401, 403, 422, 429, 503, why=_WHY),
    },
)
def list_audit(
    connection: ConnectionDep,
    state: StateDep,
    _: Governor,
    actor: Text = None,
    action: Text = None,
    workflow_id: Text = None,
    since: When = None,
    until: When = None,
    cursor: Cursor = None,
    limit: Limit = 50,
    format: Annotated[
        Literal["json", "csv", "jsonl"],
        Query(description="json: a page; csv or jsonl: every entry from the cursor on, streamed."),
    ] = "json",
) -> AuditPagePublic | Response:
    """The audit log: every human and system action (decisions, claims, cancellations,
    replays, circuits, user changes...), newest first. `since` is inclusive, `until`
    exclusive; `limit` applies to json pages only."""
    start, end = _time_range(since, until)
    filters = AuditFilter(actor, action, workflow_id, start, end)
    after = _position(cursor)
    if format != "json":
        return _export(state, filters, after, format)
    rows = audit_log.page(connection, filters=filters, after=after, limit=limit + 1)
    shown = rows[:limit]
    return AuditPagePublic(
        items=[AuditEventPublic.of(row) for row in shown],
        next_cursor=keyset.encode(shown[-1].position) if len(rows) > limit else None,
    )


def _export(
    state: AppState, filters: AuditFilter, after: Position | None, format: exports.Format
) -> StreamingResponse:
    def produce() -> Iterator[str]:
        # Its own connection: the request's is gone by the time the body streams.
        with state.engine.connect() as conn:
            records = audit_log.stream(conn, filters=filters, after=after)
            rows = (AuditEventPublic.of(r).model_dump(mode="json") for r in records)
            yield from exports.lines(rows, format=format, columns=exports.AUDIT_COLUMNS)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        produce(),
        media_type=exports.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="waypost-audit-{stamp}.{format}"'},
    )


def _time_range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    now = datetime.now(UTC)
    try:
        start = parse_time(since, now=now, name="since") if since else None
        end = parse_time(until, now=now, name="until") if until else None
    except FilterError as exc:
        raise Problem(422, "Invalid time", str(exc)) from None
    return start, end


def _position(cursor: str | None) -> Position | None:
    if not cursor:
        return None
    try:
        return keyset.decode(cursor)
    except ValueError as exc:
        raise Problem(422, "Invalid cursor", str(exc)) from None


def _day(day: str | None) -> str:
    if day is None:
        return utc_day(datetime.now(UTC))
    try:
        return date.fromisoformat(day).isoformat()
    except ValueError:
        raise Problem(422, "Invalid day", f"day={day!r} is not a date (YYYY-MM-DD)") from None
