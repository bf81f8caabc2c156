"""The dead-letter workbench (analysts and admins): search dead letters with facet counts
and an hourly histogram, read one byte for byte, edit it, dry-run and replay it (alone or
a selection), resolve or discard with a reason, and follow replays while they run.

Every replay form carries a request id made when the form was rendered, so submitting it
twice makes one request and sends nothing twice (the Replayer keys requests by id).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from orchestrator.errors import FilterError
from orchestrator.store import dead_letters as index
from orchestrator.store import replays as replay_rows
from orchestrator.store.dead_letters import DeadLetter
from orchestrator.store.replays import RequestState
from review_ui.auth.principal import Principal, page_roles
from review_ui.auth.roles import DEAD_LETTERS
from review_ui.console.common import frame
from review_ui.console.dead_letter_forms import (
    HOURS,
    NOTICES,
    STATUSES,
    DeadLetterId,
    DlqForm,
    DlqQuery,
    fresh_form,
)
from review_ui.console.dead_letter_views import (
    DryRunView,
    Result,
    facet_views,
    histogram,
    payload_text,
    shown,
)
from review_ui.console.inbox import page_window
from review_ui.console.render import pages
from review_ui.deps import AppState, StateDep
from review_ui.problems import Problem
from waypost.events import utcnow

router = APIRouter(include_in_schema=False)
Analyst = Annotated[Principal, Depends(page_roles(DEAD_LETTERS))]


def list_context(
    conn: Connection,
    state: AppState,
    principal: Principal,
    query: DlqQuery,
    *,
    form: DlqForm | None = None,
    result: Result | None = None,
) -> tuple[dict[str, Any], int]:
    """Everything the list shows for ``query``, and the status to answer with (422 when
    the filter cannot be read)."""
    now = utcnow()
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=HOURS)
    namespace = state.settings.namespace
    rows: list[DeadLetter] = []
    found: dict[str, list[tuple[str, int]]] = {}
    total, counts, filter_error = 0, [0] * HOURS, None
    try:
        filters = query.filters(now)
    except FilterError as exc:
        filter_error = str(exc)
    else:
        page = index.search(
            conn, filters=filters, namespace=namespace, page=query.page, page_size=query.page_size
        )
        rows, total = page.rows, page.total
        found = index.facets(conn, filters=filters, namespace=namespace)
        counts = index.histogram(
            conn, filters=filters, namespace=namespace, start=start, end=end, buckets=HOURS
        )
    pages_total = max(1, -(-total // query.page_size))
    context = frame(
        principal,
        query=query,
        statuses=STATUSES,
        rows=rows,
        total=total,
        pages=pages_total,
        page_numbers=page_window(query.page, pages_total),
        facets=facet_views(query, found),
        histogram=histogram(counts, start, end),
        filter_error=filter_error,
        form=form or fresh_form(),
        result=result,
        default_rate=state.settings.dlq_replay_rate,
    )
    return context, 422 if filter_error else 200


def render_list(
    request: Request,
    state: AppState,
    principal: Principal,
    query: DlqQuery,
    *,
    form: DlqForm | None = None,
    result: Result | None = None,
    status: int | None = None,
    block: str | None = None,
) -> Response:
    """The list page (or, for htmx, the block it targets)."""
    with state.engine.begin() as conn:
        context, found_status = list_context(
            conn, state, principal, query, form=form, result=result
        )
    return pages().render(
        request, "dead_letters.html", context, status=status or found_status, block=block
    )


def render_letter(
    request: Request,
    state: AppState,
    principal: Principal,
    dead_letter_id: int,
    *,
    form: DlqForm | None = None,
    errors: Mapping[str, str] | None = None,
    dry_run: DryRunView | None = None,
    replay: RequestState | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    """A dead letter's page (or, for htmx, the block it targets)."""
    with state.engine.begin() as conn:
        letter = letter_or_404(conn, dead_letter_id)
        history = replay_rows.replays_of(conn, dead_letter_id=letter.id)
    payload = payload_text(letter)
    if form is None:
        text = payload.text if letter.payload is not None else ""
        form = fresh_form(edit_kind="replace", edit=text or "")
    context = frame(
        principal,
        letter=letter,
        base_url=f"/dlq/{letter.id}",
        key=shown(letter.key),
        headers=[(name, shown(value)) for name, value in letter.headers],
        payload=payload,
        editable=letter.payload is not None or not letter.value,
        history=history,
        form=form,
        errors=dict(errors or {}),
        dry_run=dry_run,
        replay=replay,
        notice=notice,
        default_rate=state.settings.dlq_replay_rate,
    )
    return pages().render(request, "dead_letter.html", context, status=status)


def letter_or_404(conn: Connection, dead_letter_id: int) -> DeadLetter:
    """The dead letter, or a 404 problem naming its id."""
    letter = index.get(conn, dead_letter_id=dead_letter_id)
    if letter is None:
        raise Problem(
            404,
            "Dead letter not found",
            f"There is no dead letter {dead_letter_id}; it may have been mistyped.",
        )
    return letter


@router.get("/dlq")
def dead_letters(request: Request, state: StateDep, principal: Analyst) -> Response:
    """Dead letters matching the filters, with facets, a histogram and the actions."""
    return render_list(request, state, principal, DlqQuery.parse(request.query_params))


@router.get("/dlq/replays")
def replays(request: Request, state: StateDep, principal: Analyst) -> Response:
    """Replay requests, newest first: who, when, which dead letters, and how they went."""
    context = frame(principal, requests=state.replays.replayer.history(limit=100))
    return pages().render(request, "replays.html", context)


@router.get("/dlq/replays/{request_id}")
def replay_progress(
    request_id: str, request: Request, state: StateDep, principal: Analyst
) -> Response:
    """One replay request and how far it got (htmx polls its ``progress`` block)."""
    found = state.replays.replayer.state(request_id)
    if found is None:
        raise Problem(404, "Replay not found", f"There is no replay request {request_id!r}.")
    return pages().render(request, "replay.html", frame(principal, replay=found))


@router.get("/dlq/{dead_letter_id}")
def dead_letter(
    dead_letter_id: DeadLetterId,
    request: Request,
    state: StateDep,
    principal: Analyst,
    notice: str | None = None,
) -> Response:
    """One dead letter byte for byte, its replays, and the forms to act on it."""
    return render_letter(
        request, state, principal, dead_letter_id, notice=NOTICES.get(notice or "")
    )
