"""Logging in and out of the console, with an audit row for each attempt.

Attempts are throttled per typed name and per client address (``review_ui.auth.
throttle``): an attempt that must wait is refused with 429 and ``Retry-After`` before its
password is checked. Every refusal says the same whatever the reason (unknown name,
wrong password, disabled account, a wait or a lock), and an unknown name costs the same
argon2 verification as a known one, so no answer tells which accounts exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection

from orchestrator.store import audit
from orchestrator.store.audit import AuditEntry
from review_ui.auth import store, throttle, throttle_store
from review_ui.auth.principal import SESSION_COOKIE, check_origin, client_address
from review_ui.auth.throttle import NO_WAIT, Scope
from review_ui.console.common import Reader, frame, has_nul, safe_next, see_other
from review_ui.console.render import pages
from review_ui.deps import AppState, StateDep
from waypost.events import utcnow

router = APIRouter()
WRONG = "Wrong name or password."
# After a failure that makes the next attempt wait, and for an attempt refused unchecked:
# "or too many attempts", never which, so a lock says nothing about the password.
WAIT = "Wrong name or password, or too many attempts: try again {when}."
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
    """Check the password (unless the name or the client must wait); on success replace
    any session with a new one."""
    check_origin(request, state.settings.http_public_origin)
    now = utcnow()
    ip = request.client.host if request.client else None
    client = client_address(request)
    keys = [(Scope.NAME, throttle.name_key(name)), (Scope.CLIENT, client)]
    policies = throttle.policies(state.settings)
    with state.engine.begin() as conn:  # committed before the (slow) password check
        delay = throttle_store.admit(conn, keys=keys, now=now, policies=policies)
    if delay > NO_WAIT:
        return _form(
            request,
            next_url=safe_next(next_url),
            name=name,
            error=WAIT.format(when=throttle.in_words(delay)),
            status=429,
            headers={"Retry-After": throttle.retry_after(delay)},
        )
    with state.engine.begin() as conn:
        user = (
            None
            if has_nul(name, password)  # no such name can exist; PostgreSQL refuses it
            else store.authenticate(conn, name=name, password=password, now=now)
        )
        if user is None:
            delay = throttle_store.settle_failure(
                conn,
                keys=keys,
                attempt_at=now,
                now=utcnow(),
                policies=policies,
                detail={"client": client, "via": "login"},
            )
            _audit(conn, throttle.name_key(name) or "-", "login_failed", ip)
        else:
            throttle_store.settle_success(conn, keys=keys, attempt_at=now)
            _end_current_session(conn, request)
            secret, _ = store.start_session(conn, user=user, now=now)
            _audit(conn, user.name, "login", ip)
    if user is None:
        error = WAIT.format(when=throttle.in_words(delay)) if delay > NO_WAIT else WRONG
        return _form(request, next_url=safe_next(next_url), name=name, error=error, status=401)
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
    request: Request,
    *,
    next_url: str,
    name: str = "",
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    context = frame(None, next_url=next_url, name=name, error=error)
    return pages().render(request, "login.html", context, status=status, headers=headers)


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
