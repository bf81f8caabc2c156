"""Outages: one log line per outage, the reason /readyz gives, retrying in place."""

from __future__ import annotations

import logging
import threading

import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError

from waypost.errors import PublishError
from waypost.outages import BROKER, DATABASE, Backoff, Outages, dependency_of, retry_in_place


def _database_down() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("connection refused"))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_errors_name_the_dependency_that_is_out_of_reach() -> None:
    assert dependency_of(_database_down()) == DATABASE
    assert dependency_of(PublishError("not acknowledged")) == BROKER
    assert dependency_of(ProgrammingError("SELECT", {}, Exception("no such table"))) is None
    assert dependency_of(ValueError("a bug")) is None


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    outages = Outages(clock)
    with caplog.at_level(logging.WARNING, logger="waypost.outages"):
        for _ in range(5):
            outages.failed(DATABASE, _database_down())
            clock.now += 2
        outages.recovered(DATABASE)
        outages.recovered(DATABASE)  # nothing was out any more: no line

    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("database unreachable, retrying until it is back: ")
    assert lines[1] == "database reachable again after 10.0 s (5 failed attempt(s))"


def test_the_reason_names_every_outage_with_its_duration_and_last_error() -> None:
    clock = Clock()
    outages = Outages(clock)
    assert outages.reason() is None
    outages.failed(DATABASE, "connection refused")
    clock.now += 3
    outages.failed(BROKER, "all brokers down\nmore detail")
    clock.now += 4

    assert outages.reason() == (
        "broker unreachable for 4 s: all brokers down; "
        "database unreachable for 7 s: connection refused"
    )
    outages.recovered(DATABASE)
    assert outages.reason() == "broker unreachable for 4 s: all brokers down"


def test_retrying_in_place_waits_out_an_outage() -> None:
    outages = Outages()
    results = iter([_database_down(), _database_down(), "done"])

    def action() -> str:
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return result

    done, value = retry_in_place(
        action, outages=outages, stop=threading.Event(), backoff=Backoff(0.001, 0.002)
    )

    assert (done, value) == (True, "done")
    assert outages.reason() is None


def test_retrying_in_place_raises_what_is_not_an_outage() -> None:
    def action() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        retry_in_place(action, outages=Outages(), stop=threading.Event())


def test_retrying_in_place_ends_when_stopped() -> None:
    stop = threading.Event()
    stop.set()
    outages = Outages()

    def action() -> None:
        raise _database_down()

    assert retry_in_place(action, outages=outages, stop=stop) == (False, None)
    assert outages.reason() is not None
