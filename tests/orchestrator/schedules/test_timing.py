"""Slots and next fire times of cron expressions and intervals (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.schedules.timing import Cron, Every, latest_between, slots_between, zone

BERLIN = zone("Europe/Berlin")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_a_cron_slot_is_strictly_after_the_instant() -> None:
    cron = Cron("0 * * * *", zone("UTC"))
    assert cron.after(utc(2025, 1, 1, 10, 0)) == utc(2025, 1, 1, 11, 0)
    assert cron.after(utc(2025, 1, 1, 10, 0, 0).replace(microsecond=1)) == utc(2025, 1, 1, 11)


def test_a_leading_seconds_field_fires_every_few_seconds() -> None:
    cron = Cron("*/2 * * * * *", zone("UTC"))
    assert slots_between(cron, utc(2025, 1, 1, 0, 0, 0), utc(2025, 1, 1, 0, 0, 7), 10) == [
        utc(2025, 1, 1, 0, 0, 2),
        utc(2025, 1, 1, 0, 0, 4),
        utc(2025, 1, 1, 0, 0, 6),
    ]


def test_cron_is_read_in_its_time_zone() -> None:
    cron = Cron("0 9 * * *", BERLIN)
    assert cron.after(utc(2025, 1, 1)) == utc(2025, 1, 1, 8)  # CET is UTC+1
    assert cron.after(utc(2025, 7, 1)) == utc(2025, 7, 1, 7)  # CEST is UTC+2


def test_a_time_skipped_by_spring_forward_fires_after_the_gap() -> None:
    cron = Cron("30 2 * * *", BERLIN)
    # 2025-03-30 02:00 CET jumps to 03:00 CEST: 02:30 does not exist that day.
    assert cron.after(utc(2025, 3, 29, 12)) == utc(2025, 3, 30, 1)  # 03:00 CEST


def test_a_time_repeated_by_fall_back_fires_twice() -> None:
    cron = Cron("30 2 * * *", BERLIN)
    slots = slots_between(cron, utc(2025, 10, 25, 12), utc(2025, 10, 27, 12), 10)
    assert slots == [utc(2025, 10, 26, 0, 30), utc(2025, 10, 26, 1, 30), utc(2025, 10, 27, 1, 30)]


def test_the_latest_slots_are_at_or_before_the_instant() -> None:
    cron = Cron("*/2 * * * * *", zone("UTC"))
    instant = utc(2025, 1, 1, 0, 0, 4).replace(microsecond=900_000)
    assert cron.latest(instant, 2) == [utc(2025, 1, 1, 0, 0, 4), utc(2025, 1, 1, 0, 0, 2)]
    assert latest_between(cron, utc(2025, 1, 1, 0, 0, 2), instant, 5) == [utc(2025, 1, 1, 0, 0, 4)]


def test_interval_slots_are_aligned_to_the_epoch() -> None:
    every = Every(30)
    assert every.after(utc(2025, 1, 1, 0, 0, 10)) == utc(2025, 1, 1, 0, 0, 30)
    assert every.after(utc(2025, 1, 1, 0, 0, 30)) == utc(2025, 1, 1, 0, 1, 0)
    assert every.latest(utc(2025, 1, 1, 0, 1, 5), 2) == [
        utc(2025, 1, 1, 0, 1),
        utc(2025, 1, 1, 0, 0, 30),
    ]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", r"has 4 field\(s\)"),
        ("* * * * * * *", r"has 7 field\(s\)"),
        ("61 * * * *", "is not a valid cron expression"),
        ("0 0 30 2 *", "never fires"),
    ],
)
def test_bad_cron_expressions_say_why(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Cron(expression, zone("UTC"))


def test_an_unknown_time_zone_says_what_to_write() -> None:
    with pytest.raises(ValueError, match="not an IANA time zone; write one like UTC"):
        zone("Mars/Olympus")
