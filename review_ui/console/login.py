"""Logging in and out of the console, with an audit row for each attempt."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection

from orchestrator.store import audit
from orchestrator.store.audit import AuditEntry
from review_ui.auth import store
from review_ui.auth.principal import SESSION_COOKIE, check_origin
from review_ui.console.common import Reader, frame, has_nul, safe_next, see_other
from review_ui.console.render import pages
from review_ui.deps import AppState, StateDep
from waypost.events import utcnow

router = APIRouter()
WRONG = "Wrong name or password."
_MAX_NAME = 200


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    """The console starts at the inbox."""
    return see_other("/inbox")


@router.get("/login", include_in_schema=False)
def login_form(
    request: Request, next_url: Annotated[str, Query(alias="next", max_length=2000)] = "/inbox"
) -> Response:
    """The login form."""
    return _form(request, next_url=safe_next(next_url))


@router.post("/login", include_in_schema=False)
def login(
    request: Request,
    state: StateDep,
    name: Annotated[str, Form(max_length=_MAX_NAME)] = "",
    password: Annotated[str, Form(max_length=4096)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=2000)] = "/inbox",
) -> Response:
    """Check the password; on success replace any session with a new one."""
    check_origin(request, state.settings.http_public_origin)
    now = utcnow()
    ip = request.client.host if request.client else None
    with state.engine.begin() as conn:
        user = (
            None
            if has_nul(name, password)  # no such name can exist; PostgreSQL refuses it
            else store.authenticate(conn, name=name, password=password, now=now)
        )
        if user is None:
            _audit(conn, name.replace("\x00", "\ufffd") or "-", "login_failed", ip)
        else:
            _end_current_session(conn, request)
            secret, _ = store.start_session(conn, user=user, now=now)
            _audit(conn, user.name, "login", ip)
    if user is None:
        return _form(request, next_url=safe_next(next_url), name=name, error=WRONG, status=401)
    response = see_other(safe_next(next_url))
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        httponly=True,
        samesite="lax",
        path="/",
        secure=_secure(request, state),
    )
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, state: StateDep, principal: Reader) -> Response:
    """End the session (the form carries the CSRF token)."""
    with state.engine.begin() as conn:
        if principal.session is not None:
            store.end_session(conn, id_hash=principal.session.id_hash)
        _audit(conn, principal.name, "logout", request.client.host if request.client else None)
    response = see_other("/login")
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request, state)
    )
    return response


def _form(
    request: Request, *, next_url: str, name: str = "", error: str | None = None, status: int = 200
) -> Response:
    context = frame(None, next_url=next_url, name=name, error=error)
    return pages().render(request, "login.html", context, status=status)


def _end_current_session(conn: Connection, request: Request) -> None:
    """A login never keeps the session id the browser came with (no fixation)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        store.end_session(conn, id_hash=store.digest(cookie))


def _secure(request: Request, state: AppState) -> bool:
    setting = state.settings.cookie_secure
    if setting != "auto":
        return setting == "always"
    origin = state.settings.http_public_origin or ""
    return request.url.scheme == "https" or origin.startswith("https://")


def _audit(conn: Connection, actor: str, action: str, ip: str | None) -> None:
    detail = {"ip": ip} if ip else {}
    audit.record(conn, entries=[AuditEntry(actor=actor[:_MAX_NAME], action=action, detail=detail)])
