"""Keyset pages of time-ordered rows (newest first): a page ends at a ``Position`` (the
time and id of its last row) and the next starts right after it, so a deep page costs
what the first does (no OFFSET scan) and rows added meanwhile never shift a page.

A cursor is the position as opaque URL-safe text; ``decode`` refuses anything it did not
make (a ``ValueError`` saying so), so a tampered cursor is a 422, not a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

NOT_A_CURSOR = "the cursor is not one this API made; use next_cursor of the previous page"


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: the time and id of its last row."""

    at: datetime
    id: int


def encode(position: Position) -> str:
    """The cursor of a position."""
    raw = json.dumps([position.at.isoformat(), position.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str) -> Position:
    """The position a cursor names; ValueError for text that is not a cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, row_id = json.loads(raw)
        moment = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise ValueError(NOT_A_CURSOR) from None
    if (
        not isinstance(row_id, int)
        or isinstance(row_id, bool)
        or not 0 <= row_id < 2**63
        or moment.tzinfo is None
    ):
        raise ValueError(NOT_A_CURSOR)
    return Position(moment, row_id)
