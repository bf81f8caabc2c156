"""Export lines (CSV, JSON Lines) and keyset cursors, pure."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from waypost import exports, keyset
from waypost.keyset import Position

ROWS = [
    {"id": 2, "at": "2030-01-01T12:00:00+00:00", "actor": "ada", "detail": {"reason": 'a, "b"'}},
    {"id": 1, "at": "2030-01-01T11:00:00+00:00", "actor": '=HYPERLINK("x")', "detail": {}},
]
COLUMNS = ("id", "at", "actor", "detail", "missing")


def test_csv_has_a_header_quotes_what_needs_it_and_defuses_formulas() -> None:
    text = "".join(exports.lines(ROWS, format="csv", columns=COLUMNS))

    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed == [
        list(COLUMNS),
        ["2", "2030-01-01T12:00:00+00:00", "ada", '{"reason":"a, \\"b\\""}', ""],
        ["1", "2030-01-01T11:00:00+00:00", '\'=HYPERLINK("x")', "{}", ""],
    ]
    assert text.endswith("\r\n")


def test_json_lines_are_one_object_per_line_with_the_columns() -> None:
    text = "".join(exports.lines(ROWS, format="jsonl", columns=COLUMNS))

    assert [json.loads(line) for line in text.splitlines()] == [
        {
            "id": 2,
            "at": "2030-01-01T12:00:00+00:00",
            "actor": "ada",
            "detail": {"reason": 'a, "b"'},
            "missing": None,
        },
        {
            "id": 1,
            "at": "2030-01-01T11:00:00+00:00",
            "actor": '=HYPERLINK("x")',
            "detail": {},
            "missing": None,
        },
    ]


def test_a_cursor_names_its_position_and_nothing_else_is_one() -> None:
    position = Position(datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC), 42)

    assert keyset.decode(keyset.encode(position)) == position
    for bad in ("x", "", "e30", keyset.encode(position)[:-3], "WyIyMDMwIiwgLTFd", "WzEsMiwzXQ"):
        with pytest.raises(ValueError, match="not one this API made"):
            keyset.decode(bad)
