"""The escalation page's forms: decide, comment, claim, unclaim, assign.

Each runs the reviewer operation the JSON API runs too (``review_ui/review.py``). A plain
form POST that succeeds answers 303 back to the page; htmx gets the re-rendered block. A
decision (approve, edit, reject, retry) moves on instead: to the next escalation of the
inbox list the page came from (its ``from`` parameter, ``flow.py``), saying what was
decided; only after the last one does the page stay. A refused request re-renders the
page with the reason where the reviewer looks (409: the escalation as it is now, what
changed, and the ``a`` key off until they look again; 422: next to the field, their text
kept).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from orchestrator.review import ACTIONS, DecisionRequest
from review_ui import review
from review_ui.auth.principal import Principal
from review_ui.console.common import Assigner, Decider, see_other
from review_ui.console.escalation import DECIDED, Attempted, render_detail
from review_ui.console.flow import MOVES_ON, next_after
from review_ui.console.query import InboxQuery
from review_ui.console.render import is_htmx
from review_ui.deps import AppState, StateDep
from review_ui.problems import Problem

router = APIRouter(include_in_schema=False)
Version = Annotated[int, Form(ge=1)]
Digest = Annotated[str, Form(max_length=64)]
Text = Annotated[str, Form(max_length=4000)]


def parse_output(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The edited output as a JSON object, or why it is not one."""

    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not valid JSON")

    try:
        value = json.loads(text, parse_constant=no_constants)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    except ValueError as exc:
        return None, f"not valid JSON: {exc}"
    if not isinstance(value, dict):
        return None, "the output must be a JSON object ({...})"
    return value, None


@router.post("/escalations/{escalation_id}/decision")
def decide(
    escalation_id: str,
    request: Request,
    state: StateDep,
    principal: Decider,
    action: Annotated[str, Form(max_length=20)],
    version: Version,
    digest: Digest,
    reason: Text = "",
    output: Annotated[str, Form(max_length=1_000_000)] = "",
) -> Response:
    """Approve, edit, reject or retry, bound to the version and digest the page showed."""
    kept = Attempted(action=action, output_text=output if action == "edit" else None, reason=reason)
    if action not in ACTIONS:
        return _refused(request, state, principal, escalation_id, kept, 422, "unknown action")
    edited = None
    if action == "edit":
        edited, error = parse_output(output)
        if error is not None:
            return _refused(request, state, principal, escalation_id, kept, 422, error)
    decision = DecisionRequest(
        escalation_id,
        action,
        version,
        digest,
        edited,
        reason.strip() or None,
    )

    def operation() -> str:
        accepted = review.decide(state, principal, decision)
        # Under four eyes a first approval waits for a second reviewer's.
        return action if accepted.complete else "approval"

    return _run(
        request, state, principal, escalation_id, notice=action, kept=kept, operation=operation
    )


@router.post("/escalations/{escalation_id}/comments")
def comment(
    escalation_id: str,
    request: Request,
    state: StateDep,
    principal: Decider,
    version: Version,
    text: Text = "",
) -> Response:
    """Add a comment (it changes nothing but the record)."""
    return _run(
        request,
        state,
        principal,
        escalation_id,
        notice="comment",
        kept=Attempted(action="comment", comment=text),
        operation=lambda: review.comment(
            state, principal, escalation_id=escalation_id, text=text, version=version
        ),
        oob=("history",),
    )


@router.post("/escalations/{escalation_id}/claim")
def claim(escalation_id: str, request: Request, state: StateDep, principal: Decider) -> Response:
    """Take the escalation."""
    return _run(
        request,
        state,
        principal,
        escalation_id,
        notice="claim",
        kept=Attempted(action="claim"),
        operation=lambda: review.claim(state, principal, escalation_id),
    )


@router.post("/escalations/{escalation_id}/unclaim")
def unclaim(escalation_id: str, request: Request, state: StateDep, principal: Decider) -> Response:
    """Give the escalation back to its group."""
    return _run(
        request,
        state,
        principal,
        escalation_id,
        notice="unclaim",
        kept=Attempted(action="unclaim"),
        operation=lambda: review.unclaim(state, principal, escalation_id),
    )


@router.post("/escalations/{escalation_id}/assign")
def assign(
    escalation_id: str,
    request: Request,
    state: StateDep,
    principal: Assigner,
    assignee: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Hand the escalation to a reviewer (admins)."""
    if not assignee.strip():
        kept = Attempted(action="assign")
        return _refused(request, state, principal, escalation_id, kept, 422, "choose a reviewer")
    return _run(
        request,
        state,
        principal,
        escalation_id,
        notice="assign",
        kept=Attempted(action="assign"),
        operation=lambda: review.assign(state, principal, escalation_id, assignee.strip()),
    )


def _run(
    request: Request,
    state: AppState,
    principal: Principal,
    escalation_id: str,
    *,
    notice: str,
    kept: Attempted,
    operation: Callable[[], object],
    oob: tuple[str, ...] = (),
) -> Response:
    """Run ``operation`` (which may answer the notice to show instead of ``notice``)."""
    try:
        result = operation()
    except Problem as problem:
        if problem.status not in (409, 422):
            raise
        errors = tuple(
            f"{e.get('field', '?')}: {e.get('message', '')}"
            for e in problem.extra.get("errors", [])
            if isinstance(e, dict)
        )
        return _refused(
            request, state, principal, escalation_id, kept, problem.status, problem.detail, errors
        )
    if isinstance(result, str):
        notice = result
    origin = InboxQuery.origin(request.query_params)
    following = next_after(state, principal, origin, escalation_id) if notice in MOVES_ON else None
    if following is not None:
        return _move_on(request, state, principal, origin, following, notice, escalation_id)
    if not is_htmx(request):
        return see_other(origin.escalation_url(escalation_id, extra={"notice": notice}))
    return render_detail(
        request, state, principal, escalation_id, origin=origin, notice=notice, oob=oob
    )


def _move_on(
    request: Request,
    state: AppState,
    principal: Principal,
    origin: InboxQuery,
    following: str,
    notice: str,
    decided: str,
) -> Response:
    """The next escalation of the list, saying what was decided: a 303 to it, or for
    htmx the page itself, swapped into the main area under its own URL."""
    if not is_htmx(request):
        extra = {"notice": notice, DECIDED: decided}
        return see_other(origin.escalation_url(following, extra=extra))
    return render_detail(
        request,
        state,
        principal,
        following,
        origin=origin,
        notice=notice,
        decided=decided,
        block="main",
        headers={
            "HX-Retarget": "#main",
            "HX-Reswap": "innerHTML show:window:top",
            "HX-Push-Url": origin.escalation_url(following),
        },
    )


def _refused(
    request: Request,
    state: AppState,
    principal: Principal,
    escalation_id: str,
    kept: Attempted,
    status: int,
    message: str,
    errors: tuple[str, ...] = (),
) -> Response:
    # On a conflict the page shows the escalation as it is now, saying what changed; the
    # reviewer's text is kept either way.
    attempted = Attempted(
        action=kept.action,
        output_text=kept.output_text,
        reason=kept.reason,
        comment=kept.comment,
        message=message if status != 409 else None,
        errors=errors,
        conflict=message if status == 409 else None,
    )
    return render_detail(
        request,
        state,
        principal,
        escalation_id,
        origin=InboxQuery.origin(request.query_params),
        attempted=attempted,
        status=status,
    )
