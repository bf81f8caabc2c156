"""Durations, one grammar for playbooks and policies: seconds as a number, or a number
and a unit (ms, s, m, h, d); anything else is refused with one message that says what
to write."""

from __future__ import annotations

import pytest

from orchestrator.playbooks import loader as playbooks
from waypost.durations import parse_duration
from waypost.governance import loader as policies


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30.0),
        (0.25, 0.25),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("1.5s", 1.5),
        ("5m", 300.0),
        ("1.5m", 90.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("0.5d", 43200.0),
    ],
)
def test_a_duration_is_seconds(value: float | str, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["30", "5 m", " 5m", "5m\n", "m5", "-1s", "+1s", "1w", "1.s", ".5s", "5M", ""]
)
def test_anything_else_is_refused_with_what_to_write(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration") as refused:
        parse_duration(text)

    assert str(refused.value) == (
        f"{text!r} is not a duration: write seconds (30, 0.5) or a number and a unit "
        "(500ms, 30s, 5m, 1h, 1d)"
    )


def test_playbooks_and_policies_read_durations_the_same_way() -> None:
    assert playbooks.parse_duration is parse_duration
    assert policies.parse_duration is parse_duration
