"""The dead-letter workbench (analysts and admins): search dead letters with facet counts
and an hourly histogram, read one byte for byte, edit it, dry-run and replay it (alone or
a selection), resolve or discard with a reason, and follow replays while they run.

Every replay form carries a request id made when the form was rendered, so submitting it
twice makes one request and sends nothing twice (the Replayer keys requests by id).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from orchestrator.dead_letters.filters import FilterError, parse_filter
from orchestrator.dead_letters.replay import (
    ReplayConflict,
    ReplayError,
    ReplayOrder,
    RequestState,
)
from orchestrator.store import dead_letters as index
from orchestrator.store.dead_letters import DeadLetter, DeadLetterFilter
from review_ui.auth.principal import Principal, page_roles
from review_ui.auth.roles import DEAD_LETTERS
from review_ui.console.common import NUL_MESSAGE, frame, has_nul, see_other
from review_ui.console.dead_letter_forms import (
    _REQUEST_ID,
    _TOPIC,
    CLOSE,
    HOURS,
    MAX_ID,
    NOTICES,
    STATUSES,
    DeadLetterId,
    DlqForm,
    DlqQuery,
    FormDep,
    Refused,
    fresh_form,
    parse_edit,
    parse_rate,
)
from review_ui.console.dead_letter_views import (
    DryRunView,
    Result,
    facet_views,
    histogram,
    payload_text,
    preview,
    shown,
)
from review_ui.console.inbox import page_window
from review_ui.console.render import is_htmx, pages
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
        letter = _letter(conn, dead_letter_id)
        history = index.replays_of(conn, dead_letter_id=letter.id)
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


def _letter(conn: Connection, dead_letter_id: int) -> DeadLetter:
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


# --- the forms -------------------------------------------------------------------------------


@router.post("/dlq/replay")
def replay_selection(
    request: Request, state: StateDep, principal: Analyst, form: FormDep
) -> Response:
    """Dry-run (``op=dry_run``) or replay (``op=replay``) the selected dead letters, or
    every one matching the filters (``scope=filter``); the filters ride in the URL."""
    query = DlqQuery.parse(request.query_params)
    try:
        filters, given = _chosen(state, query, form)
        order = _order(state, principal, form, filters, given)
        if form.op == "dry_run":
            run = _dry_run(state, order)
            result = Result(f"Dry run: {run.total} dead letter(s)", dry_run=run)
        elif form.op == "replay":
            started = _submit(state, order)
            if not is_htmx(request):
                return see_other(f"/dlq/replays/{quote(started.id, safe='')}")
            result, form = Result("Replay started", replay=started), fresh_form()
        else:
            raise Refused(f"Unknown action {form.op!r}.")
    except Refused as refused:
        return _refused_list(request, state, principal, query, form, "Nothing replayed", refused)
    return render_list(request, state, principal, query, form=form, result=result, block="results")


@router.post("/dlq/close")
def close_selection(
    request: Request, state: StateDep, principal: Analyst, form: FormDep
) -> Response:
    """Resolve (``op=resolve``) or discard (``op=discard``) the selected dead letters, or
    every one matching the filters, with a reason."""
    query = DlqQuery.parse(request.query_params)
    try:
        status = _close_status(form)
        filters, _ = _chosen(state, query, form)
        changed, noop = _close(state, principal, filters, status, form.reason)
    except Refused as refused:
        return _refused_list(request, state, principal, query, form, "Nothing changed", refused)
    title = f"{status.capitalize()} {len(changed)} dead letter(s)"
    if noop:
        title += f"; {noop} were not pending and stay as they were"
    return render_list(request, state, principal, query, result=Result(title), block="results")


def _refused_list(
    request: Request,
    state: AppState,
    principal: Principal,
    query: DlqQuery,
    form: DlqForm,
    title: str,
    refused: Refused,
) -> Response:
    """The list's results again, with the analyst's form as sent and why it was refused."""
    result = Result(title, error=refused.message)
    return render_list(
        request,
        state,
        principal,
        query,
        form=form,
        result=result,
        status=refused.status,
        block="results",
    )


@router.post("/dlq/{dead_letter_id}/replay")
def replay_one(
    dead_letter_id: DeadLetterId,
    request: Request,
    state: StateDep,
    principal: Analyst,
    form: FormDep,
) -> Response:
    """Dry-run or replay one dead letter, as it is or edited."""
    with state.engine.connect() as conn:
        letter = _letter(conn, dead_letter_id)
    filters = DeadLetterFilter(status=None, ids=(letter.id,))
    try:
        order = _order(
            state, principal, form, filters, {"ids": [letter.id]}, unchanged=letter.payload
        )
        if form.op == "dry_run":
            shown_run = _dry_run(state, order)
            return render_letter(request, state, principal, letter.id, form=form, dry_run=shown_run)
        if form.op != "replay":
            raise Refused(f"Unknown action {form.op!r}.")
        started = _submit(state, order)
    except Refused as refused:
        return render_letter(
            request,
            state,
            principal,
            letter.id,
            form=form,
            errors={"replay": refused.message},
            status=refused.status,
        )
    if not is_htmx(request):
        return see_other(f"/dlq/replays/{quote(started.id, safe='')}")
    return render_letter(request, state, principal, letter.id, replay=started)


@router.post("/dlq/{dead_letter_id}/close")
def close_one(
    dead_letter_id: DeadLetterId,
    request: Request,
    state: StateDep,
    principal: Analyst,
    form: FormDep,
) -> Response:
    """Resolve or discard one dead letter, with a reason."""
    with state.engine.connect() as conn:
        letter = _letter(conn, dead_letter_id)
    try:
        status = _close_status(form)
        filters = DeadLetterFilter(status=None, ids=(letter.id,))
        changed, _ = _close(state, principal, filters, status, form.reason)
    except Refused as refused:
        return render_letter(
            request,
            state,
            principal,
            letter.id,
            form=form,
            errors={"close": refused.message},
            status=refused.status,
        )
    if not changed:
        message = f"It is {letter.status} already; only a pending dead letter can be {status}."
        return render_letter(
            request, state, principal, letter.id, errors={"close": message}, status=409
        )
    if not is_htmx(request):
        return see_other(f"/dlq/{letter.id}?notice={status}")
    return render_letter(request, state, principal, letter.id, notice=NOTICES[status])


def _chosen(
    state: AppState, query: DlqQuery, form: DlqForm
) -> tuple[DeadLetterFilter, dict[str, Any]]:
    """The dead letters a list form names: its ticked rows (they must exist), or every
    one matching the filters; and how the request records them."""
    if form.scope == "filter":
        expression = query.expression()
        try:
            return parse_filter(expression), {"filter": expression}
        except FilterError as exc:
            raise Refused(str(exc)) from None
    if not form.selected:
        raise Refused("Select at least one dead letter, or choose every one that matches.")
    if not all(v.isascii() and v.isdigit() and 0 < int(v) <= MAX_ID for v in form.selected):
        raise Refused("The selection is damaged; reload the page.")
    ids = tuple(sorted({int(value) for value in form.selected}))
    filters = DeadLetterFilter(status=None, ids=ids)
    with state.engine.connect() as conn:
        found = set(index.matching_ids(conn, filters=filters, namespace=""))
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise Refused(f"There is no dead letter {', '.join(missing[:10])}.", 404)
    return filters, {"ids": list(ids)}


def _order(
    state: AppState,
    principal: Principal,
    form: DlqForm,
    filters: DeadLetterFilter,
    given: dict[str, Any],
    *,
    unchanged: Any = None,
) -> ReplayOrder:
    if not _REQUEST_ID.match(form.request_id):
        raise Refused("The form has lost its request id; reload the page.")
    target = form.target.strip() or None
    if target is not None and not _TOPIC.match(target):
        raise Refused("A target topic is 1-249 letters, digits, '.', '_' or '-'.")
    return ReplayOrder(
        request_id=form.request_id,
        actor=principal.name,
        filters=filters,
        target_topic=target,
        edit=parse_edit(form.edit_kind, form.edit, unchanged=unchanged),
        rate=parse_rate(form.rate, state.settings.dlq_replay_rate),
        force=form.force,
        given=given,
    )


def _dry_run(state: AppState, order: ReplayOrder) -> DryRunView:
    run = state.replays.replayer.dry_run(order)
    return DryRunView(run.total, run.counts, [preview(p, order) for p in run.previews])


def _submit(state: AppState, order: ReplayOrder) -> RequestState:
    """Record the request (the same request id again adds nothing) and run it."""
    try:
        started, _ = state.replays.replayer.submit(order)
    except ReplayConflict as exc:
        raise Refused(f"{exc}. Reload the page for a fresh form.", 409) from None
    except ReplayError as exc:
        raise Refused(str(exc)) from None
    if started.state == "running":
        state.replays.start(started.id)
    return started


def _close_status(form: DlqForm) -> Literal["resolved", "discarded"]:
    status = CLOSE.get(form.op)
    if status is None:
        raise Refused(f"Unknown action {form.op!r}.")
    if not form.reason.strip():
        raise Refused(f"Give a reason to mark dead letters {status}; nothing was changed.")
    if has_nul(form.reason):
        raise Refused(NUL_MESSAGE)
    return "resolved" if status == "resolved" else "discarded"


def _close(
    state: AppState,
    principal: Principal,
    filters: DeadLetterFilter,
    status: Literal["resolved", "discarded"],
    reason: str,
) -> tuple[list[int], int]:
    try:
        return state.replays.replayer.close(
            filters, status=status, actor=principal.name, reason=reason.strip()
        )
    except ReplayError as exc:
        raise Refused(str(exc)) from None
