"""What JSON Waypost can store: PostgreSQL's jsonb refuses the NUL character, and orjson
(which writes every JSON Waypost stores) refuses integers beyond 64 bits."""

from __future__ import annotations

import re
from typing import Any

import orjson

# An escaped NUL in serialized JSON, not preceded by an odd number of backslashes
# (which would make it the literal text "\u0000").
_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")

NUL_PROBLEM = "strings must not contain the NUL character (\\u0000); PostgreSQL cannot store it"


def json_problem(raw: bytes) -> str | None:
    """Why serialized JSON cannot be stored, or None."""
    return NUL_PROBLEM if _NUL.search(raw) else None


def value_problem(value: Any) -> str | None:
    """Why a JSON value cannot be stored, or None."""
    try:
        raw = orjson.dumps(value)
    except TypeError as exc:
        return f"{exc}; integers must fit in 64 bits"
    return json_problem(raw)
