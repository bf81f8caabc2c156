"""Filter expressions for dead letters, as the CLI's ``--filter`` and the API take them:
space-separated ``name=value`` terms (quote values with spaces), all of which must hold.

    topic=tasks.echo error=ValueError since=2h
    workflow=3f2a... status=any text="connection refused"

Names: topic (source topic, with or without the namespace), error (error class),
capability, workflow, key, type (event type), reason, since and until (a duration back
from now such as 30m, 2h, 7d, or an ISO time), text (words of the error message or the
payload), status (pending, replayed, resolved, discarded or any; default pending).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.errors import FilterError
from orchestrator.store.dead_letters import STATUSES, DeadLetterFilter, Status

NAMES = (
    "topic",
    "error",
    "capability",
    "workflow",
    "key",
    "type",
    "reason",
    "since",
    "until",
    "text",
    "status",
)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_filter(expression: str, *, now: datetime | None = None) -> DeadLetterFilter:
    """The filter an expression stands for."""
    try:
        terms = shlex.split(expression)
    except ValueError as exc:
        raise FilterError(f"cannot read the filter {expression!r}: {exc}") from None
    values: dict[str, str] = {}
    for term in terms:
        name, sep, value = term.partition("=")
        if not sep or not name:
            raise FilterError(
                f"{term!r} is not a name=value term; use e.g. topic=tasks.echo error=ValueError"
            )
        if name not in NAMES:
            raise FilterError(f"unknown filter {name!r}; known: {', '.join(NAMES)}")
        if name in values:
            raise FilterError(f"{name} is given twice")
        values[name] = value
    return build_filter(dict(values), now=now)


def build_filter(values: dict[str, str | None], *, now: datetime | None = None) -> DeadLetterFilter:
    """A filter from named values as the CLI options and query parameters give them
    (empty or None: not filtered)."""
    given = {name: value for name, value in values.items() if value not in (None, "")}
    unknown = sorted(set(given) - set(NAMES))
    if unknown:
        raise FilterError(f"unknown filter {unknown[0]!r}; known: {', '.join(NAMES)}")
    moment = now or datetime.now(UTC)
    found = DeadLetterFilter()
    changes: dict[str, Any] = {
        "topic": given.get("topic"),
        "error": given.get("error"),
        "capability": given.get("capability"),
        "workflow": given.get("workflow"),
        "key": given.get("key"),
        "event_type": given.get("type"),
        "reason": given.get("reason"),
        "text": given.get("text"),
        "status": parse_status(given.get("status", "pending")),
    }
    for name in ("since", "until"):
        text = given.get(name)
        changes[name] = None if text is None else parse_time(text, now=moment, name=name)
    return replace(found, **changes)


def parse_status(text: str | None) -> Status | None:
    """A status, or None for "any"."""
    if text is None or text == "any":
        return None
    if text not in STATUSES:
        raise FilterError(f"unknown status {text!r}; use one of {', '.join(STATUSES)} or any")
    return text


def parse_time(text: str, *, now: datetime, name: str = "since") -> datetime:
    """A duration back from ``now`` (``90s``, ``30m``, ``2h``, ``7d``, ``1w``) or an ISO
    time (UTC when it names no zone)."""
    match = _DURATION.match(text.strip())
    if match:
        try:
            return now - timedelta(seconds=float(match[1]) * _UNITS[match[2]])
        except OverflowError:
            raise FilterError(f"{name}={text!r} reaches back before year 1") from None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(
            f"{name}={text!r} is neither a duration (30m, 2h, 7d) nor an ISO time "
            "(2026-11-22T08:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
