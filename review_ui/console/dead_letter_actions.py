"""The dead-letter workbench's forms: dry-run or replay dead letters (one, a selection,
or every one a filter matches), and resolve or discard them with a reason. Every
replay form carries a request id made when it was rendered, so submitting it twice
makes one request and sends nothing twice."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orchestrator.dead_letters.filters import parse_filter
from orchestrator.dead_letters.orders import ReplayOrder
from orchestrator.errors import FilterError, ReplayConflict, ReplayError
from orchestrator.store import dead_letters as index
from orchestrator.store.dead_letters import DeadLetterFilter
from orchestrator.store.replays import RequestState
from review_ui.auth.principal import Principal
from review_ui.console.common import NUL_MESSAGE, has_nul, see_other
from review_ui.console.dead_letter_forms import (
    _REQUEST_ID,
    _TOPIC,
    CLOSE,
    MAX_ID,
    NOTICES,
    DeadLetterId,
    DlqForm,
    DlqQuery,
    FormDep,
    Refused,
    fresh_form,
    parse_edit,
    parse_header_edit,
    parse_rate,
)
from review_ui.console.dead_letter_views import (
    DryRunView,
    Result,
    preview,
)
from review_ui.console.dead_letters import Analyst, letter_or_404, render_letter, render_list
from review_ui.console.render import is_htmx
from review_ui.deps import AppState, StateDep

router = APIRouter(include_in_schema=False)


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
        letter = letter_or_404(conn, dead_letter_id)
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
        letter = letter_or_404(conn, dead_letter_id)
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
        header_edit=parse_header_edit(form.headers_edit),
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
