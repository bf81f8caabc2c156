"""Actions from the inbox list: approve or reject several escalations at once (each bound
to the version and digest its row showed), and claim or unclaim one row."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from orchestrator.review import DecisionRequest
from orchestrator.store import escalations as escalation_rows
from review_ui import review
from review_ui.auth.principal import Principal
from review_ui.console.common import NUL_MESSAGE, Decider, has_nul, see_other
from review_ui.console.inbox import BulkResult, Outcome, inbox_context
from review_ui.console.query import InboxQuery
from review_ui.console.render import is_htmx, pages
from review_ui.deps import AppState, StateDep
from review_ui.problems import Problem
from waypost.events import utcnow

router = APIRouter(include_in_schema=False)
MAX_SELECTED = 200
_DONE = {"approve": "approved", "reject": "rejected"}


@router.post("/inbox/bulk")
def bulk(
    request: Request,
    state: StateDep,
    principal: Decider,
    op: Annotated[str, Form(max_length=300)] = "",
    selected: Annotated[list[str] | None, Form()] = None,
    reason: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Approve or reject the selected rows (``op`` = approve | reject), or claim or
    unclaim one (``op`` = claim:<id> | unclaim:<id>); the filters ride in the URL."""
    query = InboxQuery.parse(request.query_params)
    action, _, target = op.partition(":")
    keep_reason = ""
    if has_nul(op):
        result, status = BulkResult("Nothing done", error=NUL_MESSAGE), 422
    elif action in ("claim", "unclaim") and target:
        result, status = _claim(state, principal, target, claim=action == "claim")
        if status == 200 and not is_htmx(request):
            return see_other(query.url())
    elif action in _DONE and not target:
        decision: Literal["approve", "reject"] = "approve" if action == "approve" else "reject"
        result, status = _decide_all(state, principal, decision, selected or [], reason)
        keep_reason = reason if status != 200 else ""
    else:
        result, status = BulkResult("Nothing done", error=f"unknown action {op!r}"), 422
    with state.engine.begin() as conn:
        context = inbox_context(conn, principal, query, utcnow(), result=result, reason=keep_reason)
    return pages().render(request, "inbox.html", context, status=status, block="results")


def _decide_all(
    state: AppState,
    principal: Principal,
    action: Literal["approve", "reject"],
    selected: list[str],
    reason: str,
) -> tuple[BulkResult, int]:
    title = f"Bulk {action}"
    if not selected:
        return BulkResult(title, error="Select at least one escalation first."), 422
    if len(selected) > MAX_SELECTED:
        return BulkResult(title, error=f"Select at most {MAX_SELECTED} at once."), 422
    if has_nul(reason, *selected):
        return BulkResult(title, error=NUL_MESSAGE), 422
    if action == "reject" and not reason.strip():
        return BulkResult(title, error="A rejection needs a reason; nothing was rejected."), 422
    items = [_parse(value) for value in selected]
    with state.engine.begin() as conn:
        rows = escalation_rows.rows_by_id(conn, ids=[i[0] for i in items if i is not None])
    outcomes = []
    for value, item in zip(selected, items, strict=True):
        if item is None:
            outcomes.append(Outcome(value[:80], "", False, "not an escalation of this inbox"))
            continue
        escalation_id, version, digest = item
        found = rows.get(escalation_id)
        summary = found.summary if found is not None else ""
        request = DecisionRequest(
            escalation_id, action, version, digest, None, reason.strip() or None
        )
        done = _decide_one(state, principal, request)
        outcomes.append(
            Outcome(escalation_id, summary, True, _DONE[action] if done else _WAITING)
            if not isinstance(done, Problem)
            else Outcome(escalation_id, summary, False, f"{done.status}: {done.detail}")
        )
    accepted = sum(1 for o in outcomes if o.ok)
    title = f"{_DONE[action].capitalize()} {accepted} of {len(outcomes)}"
    return BulkResult(title, tuple(outcomes)), 200


def _decide_one(state: AppState, principal: Principal, request: DecisionRequest) -> Problem | bool:
    """One decision in its own transaction, so one conflict does not undo the others:
    True when it decided the escalation, False for a first approval under four eyes."""
    try:
        return review.decide(state, principal, request).complete
    except Problem as problem:
        return problem


_WAITING = "approved (a second reviewer must approve)"


def _claim(
    state: AppState, principal: Principal, escalation_id: str, *, claim: bool
) -> tuple[BulkResult, int]:
    action = "claim" if claim else "unclaim"
    try:
        (review.claim if claim else review.unclaim)(state, principal, escalation_id)
    except Problem as problem:
        outcome = Outcome(escalation_id, "", False, f"{problem.status}: {problem.detail}")
        return BulkResult(f"Could not {action}", (outcome,)), problem.status
    done = "claimed" if claim else "given back to its group"
    return BulkResult(f"{done.capitalize()}", (Outcome(escalation_id, "", True, done),)), 200


def _parse(value: str) -> tuple[str, int, str] | None:
    """``<id>:<version>:<digest>`` as the row's checkbox carries it."""
    escalation_id, _, rest = value.rpartition(":")
    escalation_id, _, version = escalation_id.rpartition(":")
    digest = rest
    if not escalation_id or not (version.isascii() and version.isdigit()) or len(digest) != 64:
        return None
    return escalation_id, int(version), digest
