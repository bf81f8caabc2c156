"""What every console page shares: who may see it, the context of the page frame, and
how a form POST answers (303 back to the page, or a re-rendered block for htmx)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends
from fastapi.responses import RedirectResponse

from review_ui.auth.principal import Principal, page_roles
from review_ui.auth.roles import (
    ASSIGN,
    DEAD_LETTERS,
    DECIDE,
    GOVERNANCE,
    MANAGE_USERS,
    OPERATE,
    READ,
    Role,
)

Reader = Annotated[Principal, Depends(page_roles(READ))]
Decider = Annotated[Principal, Depends(page_roles(DECIDE))]
Assigner = Annotated[Principal, Depends(page_roles(ASSIGN))]
UserAdmin = Annotated[Principal, Depends(page_roles(MANAGE_USERS))]
Operator = Annotated[Principal, Depends(page_roles(OPERATE))]
Governor = Annotated[Principal, Depends(page_roles(GOVERNANCE))]

DEFAULT_PAGE = "/inbox"
NUL_MESSAGE = "Remove the NUL character (U+0000) from what you typed; it cannot be stored."
CSRF_HEADER_NAME = "X-CSRF-Token"  # what htmx sends; CSRF_HEADER is its lower-case form


def frame(principal: Principal | None, **extra: Any) -> dict[str, Any]:
    """The context of the page frame (header, nav, the CSRF header htmx sends)."""
    return {
        "principal": principal,
        "csrf_token": principal.csrf_token if principal is not None else "",
        # A JSON string, autoescaped into the attribute like any other text.
        "htmx_headers": json.dumps({CSRF_HEADER_NAME: principal.csrf_token})
        if principal is not None
        else "",
        "may_decide": principal is not None and principal.may(DECIDE),
        "may_assign": principal is not None and principal.may(ASSIGN),
        "is_admin": principal is not None and principal.role is Role.ADMIN,
        "may_manage_users": principal is not None and principal.may(MANAGE_USERS),
        "may_dead_letters": principal is not None and principal.may(DEAD_LETTERS),
        "may_operate": principal is not None and principal.may(OPERATE),
        "may_govern": principal is not None and principal.may(GOVERNANCE),
        **extra,
    }


def has_nul(*values: str) -> bool:
    """True if any value holds U+0000, which PostgreSQL text cannot store."""
    return any("\x00" in value for value in values)


def safe_next(value: str | None) -> str:
    """A path on this site to go to after login, never an open redirect."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value)
    ):
        return DEFAULT_PAGE
    return value


def see_other(url: str) -> RedirectResponse:
    """Post/Redirect/Get: 303 to a page on this site."""
    return RedirectResponse(safe_next(url), status_code=303)


def url_text(params: Mapping[str, str], name: str, max_length: int) -> str:
    """A URL parameter, stripped; "" (its default) when it is too long or holds NUL."""
    value = str(params.get(name, "")).strip()
    return value if len(value) <= max_length and "\x00" not in value else ""


def url_number(value: str, default: int, low: int, high: int) -> int:
    """``value`` as a number from ``low`` to ``high``, else ``default``."""
    try:
        number = int(value)
    except ValueError:
        return default
    return number if low <= number <= high else default
