"""Errors on console pages: to the login page without a session, an HTML error page (or,
for htmx, a message in the page's alert area) instead of a problem document. The JSON
API keeps its problem documents."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from review_ui.auth import store
from review_ui.auth.principal import SESSION_COOKIE, LoginRequired, Principal
from review_ui.console.common import frame, safe_next
from review_ui.console.render import is_htmx, pages
from review_ui.deps import AppState
from review_ui.problems import Problem
from waypost.events import utcnow

log = logging.getLogger(__name__)
Handler = Callable[[Request, Exception], Response | Awaitable[Response]]
_JSON_PATHS = ("/api/", "/healthz", "/readyz", "/metrics")


def wants_html(request: Request) -> bool:
    """True when a browser asked for a page (not the JSON API)."""
    if request.url.path.startswith(_JSON_PATHS):
        return False
    return "text/html" in request.headers.get("accept", "") or is_htmx(request)


def login_redirect(request: Request) -> Response:
    """To the login page, coming back to the page the user was on."""
    if request.headers.get("hx-request") == "true":
        current = urlsplit(request.headers.get("hx-current-url", ""))
        back = current.path + (f"?{current.query}" if current.query else "")
        # A redirect would be followed by the XMLHttpRequest; htmx must load the page.
        return Response(status_code=200, headers={"HX-Redirect": _login_url(back)})
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(_login_url(back if request.method == "GET" else None), 303)


def _login_url(back: str | None) -> str:
    target = safe_next(back)
    return "/login" if target == "/inbox" else "/login?" + urlencode({"next": target})


def viewer(request: Request) -> Principal | None:
    """Who is looking at an error page, if their session says (for the page header)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    state: AppState = request.app.state.waypost
    try:
        with state.engine.begin() as conn:
            session = store.find_session(
                conn,
                secret=cookie,
                now=utcnow(),
                idle_s=state.settings.session_idle_timeout_s,
                max_age_s=state.settings.session_max_age_s,
            )
    except SQLAlchemyError:  # the error page must not fail too
        log.warning("no session lookup for an error page", exc_info=True)
        return None
    if session is None:
        return None
    return Principal(session.user.name, session.user.role, "session", session)


def error_page(
    request: Request,
    status: int,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    principal: Principal | None = None,
) -> Response:
    """An error as HTML: a page, or for htmx a message swapped into the alert area."""
    extra = dict(headers or {})
    if is_htmx(request):
        extra.update({"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
    return pages().render(
        request,
        "error.html",
        frame(principal, status=status, title=title, detail=detail),
        status=status,
        block="error_message" if is_htmx(request) else None,
        headers=extra,
    )


def install(app: FastAPI) -> None:
    """Answer errors on console pages with HTML; keep the app's JSON problem handlers
    for everything else."""
    json_handlers: dict[type[Exception], Handler] = {
        kind: app.exception_handlers[kind]
        for kind in (Problem, RequestValidationError, StarletteHTTPException, Exception)
    }

    async def on_login_required(request: Request, exc: Exception) -> Response:
        return login_redirect(request)

    async def on_error(request: Request, exc: Exception) -> Response:
        if not wants_html(request):
            kind = next(k for k in json_handlers if isinstance(exc, k))
            result = json_handlers[kind](request, exc)
            return await result if isinstance(result, Awaitable) else result
        if not isinstance(exc, Problem | RequestValidationError | StarletteHTTPException):
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            return error_page(request, 500, "Internal error", "the server failed; see its log")
        principal = await run_in_threadpool(viewer, request)
        if isinstance(exc, Problem):
            return error_page(
                request, exc.status, exc.title, exc.detail, exc.headers, principal=principal
            )
        if isinstance(exc, RequestValidationError):
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            return error_page(request, 422, "Invalid request", detail, principal=principal)
        status = exc.status_code
        return error_page(request, status, _phrase(status), str(exc.detail), principal=principal)

    app.add_exception_handler(LoginRequired, on_login_required)
    for kind in json_handlers:
        app.add_exception_handler(kind, on_error)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
