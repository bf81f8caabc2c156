"""What the OpenAPI document at ``/api/v1/openapi.json`` says, and that it is true.

Routes state the error statuses they can answer with ``problems(...)``; every one is an
``application/problem+json`` body (``ProblemDocument``, the shape ``review_ui.problems``
writes) with the headers the app sends with it. ``install(app)`` finishes the document:
the problem schema, the security schemes (a bearer token, or the console's session
cookie) and a ``security`` requirement on every operation that can answer 401, which a
route declares exactly when it authenticates the caller.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import FastAPI, Path
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from review_ui.auth.principal import SESSION_COOKIE
from review_ui.problems import MEDIA_TYPE

# Text parameters and fields match this: PostgreSQL text cannot hold U+0000. A query or
# body value with one is a 422; a path id with one names nothing (404, checked in code).
NO_NUL = r"^[^\x00]*$"
# A path parameter: documented with that pattern (a NUL in it is a 404, checked in code).
PathText = Annotated[str, Path(json_schema_extra={"pattern": NO_NUL})]

BEARER = "bearerAuth"
SESSION = "sessionCookie"
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token: `waypost token create --name NAME --role ROLE`. "
        "An unknown or revoked token is 401 and counts against the client address; "
        "too many of them make it 429 for a while.",
    },
    SESSION: {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "The console's session (after /login). A state-changing request "
        "made with it also needs the session's CSRF token in `X-CSRF-Token` and this "
        "app's own Origin, else 403.",
    },
}
# Either scheme is enough (alternatives, not both).
SECURITY: list[dict[str, list[str]]] = [{BEARER: []}, {SESSION: []}]


class FieldError(BaseModel):
    """One invalid field of a request."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(
        description="Where: e.g. `body.version`, `query.limit`, or a goal input's field."
    )
    message: str


class ProblemDocument(BaseModel):
    """An error (RFC 9457), with the extension members the app really sends."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="Always `about:blank`: `title` says what happened.")
    title: str
    status: int = Field(ge=400, le=599, description="The response's status code.")
    detail: str = Field(description="What went wrong and what to do about it.")
    instance: str = Field(description="The request's path.")
    errors: list[FieldError] | None = Field(
        None, description="422: each invalid field (the schema's or a playbook's)."
    )
    known: list[str] | None = Field(None, description="Unknown goal type: the known ones.")
    version: int | None = Field(
        None, description="409: the escalation's current version; read it again."
    )
    escalation_status: str | None = Field(
        None, description="409: the escalation is no longer pending."
    )
    assignee: str | None = Field(None, description="409: who holds the escalation.")
    attempt: int | None = Field(None, description="A retry with no attempt left.")
    max_attempts: int | None = None
    checks: dict[str, bool] | None = Field(None, description="/readyz: which dependency answered.")


_RETRY_AFTER = {
    "description": "Seconds to wait before trying again.",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}
# The headers the app sends with each status (and the reason they are needed).
HEADERS: dict[int, dict[str, dict[str, Any]]] = {
    401: {
        "WWW-Authenticate": {
            "description": 'RFC 6750: `Bearer`, or `Bearer error="invalid_token"`.',
            "required": True,
            "schema": {"type": "string", "pattern": "^Bearer"},
        }
    },
    429: {"Retry-After": _RETRY_AFTER},
    503: {"Retry-After": _RETRY_AFTER},
}
DESCRIPTIONS: dict[int, str] = {
    400: "A body that cannot be read as JSON (it is not UTF-8 text).",
    401: "No credentials, or an unknown or revoked bearer token, or an ended session.",
    403: "The caller's role may not do this (with a session cookie, also: a missing CSRF "
    "token or a foreign Origin).",
    404: "Not found.",
    409: "Conflict with the current state.",
    422: "The request breaks the schema or a rule in the operation's description; "
    "`errors` lists the fields when there are some.",
    429: "Too many unknown API tokens (or failed logins) from this client address.",
    503: "The database or the broker is unreachable: try again after `Retry-After`.",
}


def problems(*statuses: int, why: Mapping[int, str] | None = None) -> dict[int | str, Any]:
    """The ``responses=`` of a route that can answer exactly ``statuses`` with a problem
    document; ``why`` describes some of them for this route (descriptions of others are
    ignored, so several routes can share one ``why``)."""
    reasons = dict(why or {})
    responses: dict[int | str, Any] = {}
    for status in sorted(set(statuses)):
        response: dict[str, Any] = {
            "description": reasons.get(status, DESCRIPTIONS.get(status, "Error.")),
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}},
        }
        if status in HEADERS:
            response["headers"] = copy.deepcopy(HEADERS[status])
        responses[status] = response
    return responses


def install(app: FastAPI) -> None:
    """Serve ``app``'s document with the problem schema and its security declared."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]  # FastAPI's documented hook


def build(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document of ``app``, completed (see the module docstring)."""
    doc = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
        separate_input_output_schemas=app.separate_input_output_schemas,
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem = ProblemDocument.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["ProblemDocument"] = problem
    components["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if _FASTAPI_422 in responses.get("422", {}).get("content", {}).values():
                # FastAPI lists this for any route with parameters that lists no 422 of
                # its own; the app never sends it (its 422s are problem documents).
                del responses["422"]
            if "401" in responses:
                # Unless the route says otherwise: a signed webhook answers 401 for a bad
                # signature, and declares no token (``security: []``).
                operation.setdefault("security", copy.deepcopy(SECURITY))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    _exact_bounds(doc)
    return doc


_FASTAPI_422 = {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}


_BOUNDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})


def _exact_bounds(node: Any) -> None:
    """Write integral bounds as integers: FastAPI's document model makes every bound a
    float (``1.0``, and 2^63 as ``9.223372036854776e+18``)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _BOUNDS and isinstance(value, float) and value.is_integer():
                node[key] = int(value)
            else:
                _exact_bounds(value)
    elif isinstance(node, list):
        for item in node:
            _exact_bounds(item)
