"""Who is asking: a session cookie (the console) or a bearer token (the API).

State-changing requests from browsers are checked twice: the Origin (or Referer) must be
this app's own origin, and a session-authenticated request must carry the session's
CSRF token (header ``X-CSRF-Token``, sent by htmx, or form field ``csrf_token``).
Bearer-token requests carry no ambient credentials, so neither check applies to them.

An unknown or revoked bearer token is a failure of the client address it came from
(``throttle``); a client with too many of them (and of failed logins) gets 429 with
``Retry-After`` before its token is even looked up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import Depends, Request

from review_ui.auth import store, throttle, throttle_store
from review_ui.auth.roles import Role
from review_ui.auth.store import Session
from review_ui.auth.throttle import NO_WAIT, Scope
from review_ui.deps import AppState, StateDep
from review_ui.problems import Problem
from waypost.events import utcnow

SESSION_COOKIE = "waypost_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated user or API token."""

    name: str
    role: Role
    via: Literal["session", "token"]
    session: Session | None = None

    @property
    def csrf_token(self) -> str:
        """The CSRF token pages embed (empty for tokens)."""
        return self.session.csrf_token if self.session is not None else ""

    def may(self, roles: Iterable[Role]) -> bool:
        """True if this principal's role is one of ``roles``."""
        return self.role in roles


class LoginRequired(Exception):
    """A console page was asked for without a session: the handler redirects to /login."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def client_address(request: Request) -> str:
    """The throttling key of the client a request comes from: the address uvicorn
    reports (the socket peer, or the ``X-Forwarded-For`` client when the peer is one of
    uvicorn's ``FORWARDED_ALLOW_IPS``), an IPv6 address as its /64."""
    return throttle.client_key(request.client.host if request.client else None)


def too_many_attempts(delay: timedelta) -> Problem:
    """The 429 of a throttled client or name, with ``Retry-After``."""
    return Problem(
        429,
        "Too Many Requests",
        f"too many failed logins or unknown API tokens; try again {throttle.in_words(delay)}",
        headers={"Retry-After": throttle.retry_after(delay)},
    )


def _authenticate(request: Request, state: StateDep) -> Principal | None:
    """The principal behind the request's bearer token or session cookie, if any."""
    now = utcnow()
    authorization = request.headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return bearer_principal(state, credentials.strip(), client_address(request), now)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    with state.engine.begin() as conn:
        session = store.find_session(
            conn,
            secret=cookie,
            now=now,
            idle_s=state.settings.session_idle_timeout_s,
            max_age_s=state.settings.session_max_age_s,
        )
    if session is None:
        return None
    return Principal(session.user.name, session.user.role, "session", session)


def bearer_principal(state: AppState, secret: str, client: str, now: datetime) -> Principal:
    """The token's principal; 429 for a throttled client (before any lookup, so a
    guesser learns nothing more), 401 (counted against the client) for a bad token."""
    policies = throttle.policies(state.settings)
    with state.engine.begin() as conn:
        delay = throttle_store.wait(
            conn, scope=Scope.CLIENT, key=client, now=now, policies=policies
        )
        if delay > NO_WAIT:
            raise too_many_attempts(delay)
        token = store.find_token(conn, secret=secret, now=now)
        if token is None:
            detail = {"via": "api_token"}
            throttle_store.record_failure(
                conn, scope=Scope.CLIENT, key=client, now=now, policies=policies, detail=detail
            )
    if token is None:  # raised after the commit: the failure must stay counted
        raise Problem(
            401,
            "Unauthorized",
            "the bearer token is unknown or revoked",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return Principal(token.name, token.role, "token")


async def _sent_csrf_token(request: Request) -> str | None:
    if request.method in _SAFE:
        return None
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def check_origin(request: Request, public_origin: str | None) -> None:
    """403 unless a state-changing browser request comes from this app's own origin."""
    expected = public_origin or f"{request.url.scheme}://{request.headers.get('host', '')}"
    sent = request.headers.get("origin")
    if sent is None and request.headers.get("referer"):
        parts = urlsplit(request.headers["referer"])
        sent = f"{parts.scheme}://{parts.netloc}"
    if sent is None:
        raise Problem(403, "Forbidden", "state-changing requests need an Origin header")
    if sent.rstrip("/") != expected.rstrip("/"):
        raise Problem(403, "Forbidden", f"requests from {sent} are not accepted here")


async def current_principal(
    request: Request,
    state: StateDep,
    found: Annotated[Principal | None, Depends(_authenticate)],
    sent_csrf: Annotated[str | None, Depends(_sent_csrf_token)],
) -> Principal | None:
    """The principal, after the Origin and CSRF checks of state-changing requests made
    with a session cookie (the only ambient credential; the login form checks its Origin
    itself)."""
    if request.method in _SAFE or found is None or found.via == "token":
        return found
    check_origin(request, state.settings.http_public_origin)
    if sent_csrf is None or sent_csrf != found.csrf_token:
        raise Problem(403, "Forbidden", "missing or wrong CSRF token; reload the page")
    return found


PrincipalDep = Annotated[Principal | None, Depends(current_principal)]


def api_roles(roles: Iterable[Role]) -> Callable[..., Principal]:
    """An API dependency: 401 without credentials, 403 without one of ``roles``."""
    allowed = frozenset(roles)

    def require(principal: PrincipalDep) -> Principal:
        if principal is None:
            raise Problem(
                401,
                "Unauthorized",
                "authenticate with a bearer token (`waypost token create`) or a console session",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not principal.may(allowed):
            raise Problem(403, "Forbidden", f"the {principal.role} role may not do this")
        return principal

    return require


def token_caller(request: Request, state: AppState) -> Principal:
    """The principal of the request's bearer token, for the protocol endpoints (MCP,
    A2A), whose callers are programs: 401 without one (a console session is not
    accepted: it is an ambient credential and these requests carry no CSRF token), and
    the throttle and 401 of ``bearer_principal`` for a bad one."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Problem(
            401,
            "Unauthorized",
            "send `Authorization: Bearer <token>` with an API token (`waypost token "
            "create --role ROLE`); console sessions are not accepted here",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return bearer_principal(state, credentials.strip(), client_address(request), utcnow())


def bearer_roles(roles: Iterable[Role]) -> Callable[..., Principal]:
    """A dependency of the protocol endpoints: ``token_caller``, then 403 without one
    of ``roles``."""
    allowed = frozenset(roles)

    def require(request: Request, state: StateDep) -> Principal:
        principal = token_caller(request, state)
        if not principal.may(allowed):
            raise Problem(403, "Forbidden", f"the {principal.role} role may not do this")
        return principal

    return require


def page_roles(roles: Iterable[Role]) -> Callable[..., Principal]:
    """A console dependency: to /login without a session, 403 without one of ``roles``."""
    allowed = frozenset(roles)

    def require(request: Request, principal: PrincipalDep) -> Principal:
        if principal is None:
            query = f"?{request.url.query}" if request.url.query else ""
            raise LoginRequired(request.url.path + query)
        if not principal.may(allowed):
            raise Problem(403, "Forbidden", f"the {principal.role} role may not do this")
        return principal

    return require
