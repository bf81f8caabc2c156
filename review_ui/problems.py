"""Errors as ``application/problem+json`` (RFC 9457), for every status the app returns."""

from __future__ import annotations

import logging
import re
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from waypost.errors import BusError
from waypost.outages import Outages, dependency_of

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error to answer with a problem document (``headers`` go on the response)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    status: int,
    title: str,
    detail: str,
    request: Request,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem document response."""
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install(app: FastAPI) -> None:
    """Answer every error, including validation and unexpected ones, as a problem."""

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status, exc.title, exc.detail, request, headers=exc.headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in error["loc"]),
                "message": error["msg"],
            }
            for error in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem_response(422, "Invalid request", detail, request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})  # Starlette's 405 names the methods in Allow
        allowed = _allowed(request) if exc.status_code == 405 else None
        if allowed:
            headers["Allow"] = allowed
        return problem_response(
            exc.status_code, _title(exc.status_code), str(exc.detail), request, headers=headers
        )

    async def on_dependency(request: Request, exc: Exception) -> JSONResponse:
        dependency = dependency_of(exc)
        if dependency is None:
            return await on_unexpected(request, exc)
        # An outage, not a bug: logged once while it lasts (Outages), and the client is
        # told to come back. (Registered for these error classes, not as the catch-all:
        # Starlette re-raises what the catch-all handled, and the server logs it again.)
        outages: Outages = request.app.state.waypost.outages
        outages.failed(dependency, exc)
        return problem_response(
            503,
            "Service unavailable",
            f"the {dependency} is unreachable; try again shortly",
            request,
            headers={"Retry-After": "5"},
        )

    for error_class in (SQLAlchemyError, psycopg.Error, BusError):
        app.add_exception_handler(error_class, on_dependency)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500, "Internal error", "the server failed; see its log for details", request
        )


def _allowed(request: Request) -> str | None:
    """The methods the OpenAPI document lists for every path template the request's path
    matches (None: no documented path). Starlette's ``Allow`` names the methods of the
    first matching route only: for ``/dlq/replays`` that is GET, though POST is served."""
    paths: dict[str, Any] = request.app.openapi().get("paths", {})
    methods = {
        method.upper()
        for template, operations in paths.items()
        if _pattern(template).fullmatch(request.url.path)
        for method in operations
    }
    return ", ".join(sorted(methods)) or None


def _pattern(template: str) -> re.Pattern[str]:
    """A regular expression for an OpenAPI path template: ``{name}`` is one segment."""
    parts = re.split(r"\{[^}/]+\}", template)
    return re.compile("[^/]+".join(re.escape(part) for part in parts))


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
