"""The Agents page (every role reads it): each capability's live workers, throughput,
error rate and backlog over a recent window, and its circuit breaker; a capability's
own page lists its workers, and there an admin opens its circuit by hand (for a while
or until closed) or closes it.

Both pages refresh their figures every few seconds by htmx polling (``live`` blocks);
the breaker forms sit outside what is polled, so a refresh never wipes what the admin
types. A change is confirmed on a second page before it is made (no JavaScript needed),
then made and audited (``orchestrator/manual_breakers.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from orchestrator.manual_breakers import (
    CircuitAlreadyClosed,
    CloseCircuit,
    OpenCircuit,
    close_circuit,
    open_circuit,
)
from review_ui.api.breakers import LONGEST_S
from review_ui.auth.principal import Principal
from review_ui.capabilities import DEFAULT_WINDOW, WINDOWS, known_capabilities, overview
from review_ui.console.common import Operator, Reader, frame, has_nul, see_other
from review_ui.console.render import is_htmx, pages
from review_ui.deps import AppState, StateDep
from review_ui.problems import Problem
from waypost.durations import parse_duration
from waypost.events import utcnow

router = APIRouter(include_in_schema=False)
POLL_S = 5
NOTICES = {
    "opened": "Circuit opened by hand: its tasks go to their fallback or wait.",
    "closed": "Circuit closed: it gets work again, and the tasks waiting for it are due now.",
}


@dataclass(frozen=True, slots=True)
class BreakerForm:
    """What an admin typed into a breaker form, and what is wrong with it."""

    action: str = ""  # open | close
    reason: str = ""
    duration: str = ""  # "" (until closed by hand), or 10m, 2h, 1d, ...
    error: str | None = None

    @property
    def for_s(self) -> float | None:
        """The duration in seconds (None: until closed by hand)."""
        return parse_duration(self.duration) if self.duration else None

    def checked(self) -> BreakerForm:
        """The form with its error, if any."""
        if not self.reason.strip():
            return self._refused("Say why: the reason is kept in the audit log.")
        if len(self.reason) > 500 or has_nul(self.reason):
            return self._refused("Keep the reason under 500 characters, without NUL.")
        if self.action == "open" and self.duration:
            try:
                seconds = parse_duration(self.duration)
            except ValueError as exc:
                return self._refused(str(exc).capitalize() + ".")
            if not 0 < seconds <= LONGEST_S:
                return self._refused("Choose a time up to 30d, or none (until closed by hand).")
        return self

    def _refused(self, error: str) -> BreakerForm:
        return BreakerForm(self.action, self.reason, self.duration, error)


def window_of(value: str | None) -> str:
    """The window named in the URL, or the default."""
    return value if value in WINDOWS else DEFAULT_WINDOW


@router.get("/agents")
def agents_page(
    request: Request, state: StateDep, principal: Reader, window: str | None = None
) -> Response:
    """Every capability: workers, throughput, error rate, backlog, circuit."""
    name = window_of(window)
    with state.engine.begin() as conn:
        views = overview(conn, state.playbooks, now=utcnow(), window=WINDOWS[name])
    context = frame(principal, capabilities=views, **_window_context(name, "/agents"))
    return pages().render(request, "agents.html", context)


@router.get("/agents/{capability}")
def capability_page(
    capability: str,
    request: Request,
    state: StateDep,
    principal: Reader,
    window: str | None = None,
    notice: str | None = None,
) -> Response:
    """One capability: its workers one by one, its figures and its circuit (with the
    forms to open or close it for admins)."""
    return _render(
        request, state, principal, capability, window_of(window), notice=NOTICES.get(notice or "")
    )


@router.post("/agents/{capability}/breaker")
def change_breaker(
    capability: str,
    request: Request,
    state: StateDep,
    principal: Operator,
    action: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
    duration: Annotated[str, Form(max_length=20)] = "",
    confirmed: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Open or close the capability's circuit: first the confirmation page, then (with
    ``confirmed=yes``) the change, audited."""
    name = window_of(request.query_params.get("window"))
    form = BreakerForm(action, reason.strip(), duration.strip()).checked()
    if action not in ("open", "close"):
        form = BreakerForm(error="Choose to open or to close the circuit.")
    if form.error is not None or confirmed != "yes":
        status = 422 if form.error is not None else 200
        return _answer(request, state, principal, capability, name, form=form, status=status)
    now = utcnow()
    try:
        with state.engine.begin() as conn:
            _known_or_404(conn, state, capability)
            if action == "open":
                command = OpenCircuit(capability, principal.name, form.reason, form.for_s)
                open_circuit(conn, command, now=now)
            else:
                close_circuit(conn, CloseCircuit(capability, principal.name, form.reason), now=now)
    except CircuitAlreadyClosed as exc:
        refused = BreakerForm(error=str(exc).capitalize() + ".")
        return _answer(request, state, principal, capability, name, form=refused, status=409)
    notice = "opened" if action == "open" else "closed"
    if is_htmx(request):
        return _answer(request, state, principal, capability, name, notice=NOTICES[notice])
    return see_other(f"{_capability_url(capability)}?window={name}&notice={notice}")


def _answer(
    request: Request,
    state: AppState,
    principal: Principal,
    capability: str,
    window: str,
    **kwargs: Any,
) -> Response:
    """The answer to a breaker form: for htmx its block, with the figures out of band."""
    if is_htmx(request):
        kwargs.update(block="breaker", oob=("live",))
    return _render(request, state, principal, capability, window, **kwargs)


def _render(
    request: Request,
    state: AppState,
    principal: Principal,
    capability: str,
    window: str,
    *,
    form: BreakerForm | None = None,
    notice: str | None = None,
    status: int = 200,
    block: str | None = None,
    oob: tuple[str, ...] = (),
) -> Response:
    with state.engine.begin() as conn:
        views = overview(conn, state.playbooks, now=utcnow(), window=WINDOWS[window])
    view = next((v for v in views if v.name == capability), None)
    if view is None:
        raise _not_found(capability)
    url = _capability_url(capability)
    context = frame(
        principal,
        capability=view,
        form=form or BreakerForm(),
        notice=notice,
        durations=("10m", "30m", "1h", "4h", "24h"),
        **_window_context(window, url),
    )
    return pages().render(
        request, "agent_capability.html", context, status=status, block=block, oob=oob
    )


def _known_or_404(conn: Connection, state: AppState, capability: str) -> None:
    if "\x00" in capability or capability not in known_capabilities(conn, state.playbooks):
        raise _not_found(capability)


def _not_found(capability: str) -> Problem:
    return Problem(
        404,
        "Capability not found",
        f"No playbook, agent worker or circuit knows capability {capability!r}.",
    )


def _capability_url(capability: str) -> str:
    return "/agents/" + quote(capability, safe="")


def _window_context(window: str, url: str) -> dict[str, Any]:
    return {
        "window": window,
        "windows": list(WINDOWS),
        "window_minutes": WINDOWS[window] / timedelta(minutes=1),
        "page_url": url,
        "poll_s": POLL_S,
    }
