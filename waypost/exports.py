"""Rows as export files, one line at a time (so a response or a file can stream them):
CSV with a header, or JSON Lines. The HTTP API's exports and the CLI's share it, so a
file is the same whichever made it.

CSV cells that hold JSON (objects, lists) are written as compact JSON text; a text cell
that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab
or carriage return) gets a leading ``'``, as OWASP recommends, because audit entries
hold text people typed.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

Format = Literal["csv", "jsonl"]
MEDIA_TYPES: dict[Format, str] = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
# The columns of an audit log export, in order (the CSV header; the JSON Lines keys).
AUDIT_COLUMNS = (
    "id",
    "at",
    "actor",
    "action",
    "workflow_id",
    "escalation_id",
    "version",
    "digest",
    "detail",
)


def lines(
    rows: Iterable[Mapping[str, Any]], *, format: Format, columns: Sequence[str]
) -> Iterator[str]:
    """The export of ``rows`` (their ``columns``, in order), line by line."""
    if format == "jsonl":
        for row in rows:
            yield (
                json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False, default=str) + "\n"
            )
        return
    yield _csv_line(columns)
    for row in rows:
        yield _csv_line([_cell(row.get(c)) for c in columns])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _csv_line(cells: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()
