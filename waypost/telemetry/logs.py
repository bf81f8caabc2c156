"""Log formats, and decision logs: one line per agent decision and per policy decision.

With ``WAYPOST_LOG_FORMAT=json`` every record is one JSON object per line carrying the
trace and span ids of the span it was written in; a decision record carries its fields
under ``decision``. In the text format a decision is its JSON after the message.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.trace import format_span_id, format_trace_id

decisions = logging.getLogger("waypost.decisions")

_REASONING_CHARS = 500


def digest(value: Any) -> str:
    """``sha256:`` of a JSON value's canonical form (sorted keys), for logs that must not
    carry the data itself."""
    raw = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def summary(lines: list[str] | tuple[str, ...]) -> str:
    """The reasoning of a decision, shortened for a log line."""
    text = " | ".join(lines)
    return text if len(text) <= _REASONING_CHARS else text[: _REASONING_CHARS - 1] + "…"


def log_decision(kind: str, fields: Mapping[str, Any]) -> None:
    """Write one decision line (``kind``: agent | policy) with the current trace ids."""
    if not decisions.isEnabledFor(logging.INFO):
        return
    record = {"kind": kind, **fields, **_trace_ids()}
    decisions.info("%s decision", kind, extra={"decision": record})


def _trace_ids() -> dict[str, str]:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "trace_id": format_trace_id(context.trace_id),
        "span_id": format_span_id(context.span_id),
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, process, logger, message, trace ids."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self._process = process

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "process": self._process,
            "logger": record.name,
            "message": record.getMessage(),
            **_trace_ids(),
        }
        decision = getattr(record, "decision", None)
        if decision is not None:
            line["decision"] = decision
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """The plain one-line format; a decision's fields follow its message as JSON."""

    def __init__(self, process: str) -> None:
        super().__init__(f"%(asctime)s {process} %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The record as text."""
        text = super().format(record)
        decision = getattr(record, "decision", None)
        if decision is not None:
            text += " " + orjson.dumps(decision, default=str).decode()
        return text
