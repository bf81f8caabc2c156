"""Which slots a round fires, per catch-up policy, with an injected clock (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.schedules.policy import CatchUp, Fire, next_fire, plan
from orchestrator.schedules.timing import Cron, Every, zone

EVERY_2S = Cron("*/2 * * * * *", zone("UTC"))
GRACE = timedelta(seconds=30)
T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fired(policy: CatchUp, *, through: float, now: float, grace: timedelta = GRACE) -> list[Fire]:
    return list(plan(EVERY_2S, policy, fired_through=at(through), now=at(now), grace=grace).fires)


def test_nothing_fires_before_the_next_slot() -> None:
    decided = plan(EVERY_2S, CatchUp("all"), fired_through=at(0), now=at(1.5), grace=GRACE)
    assert decided.fires == ()
    assert decided.fired_through == at(0)
    assert decided.next_fire_at == at(2)


def test_an_on_time_slot_fires_under_every_policy() -> None:
    for policy in (CatchUp("skip"), CatchUp("one"), CatchUp("all"), CatchUp("bounded", 3)):
        decided = plan(EVERY_2S, policy, fired_through=at(0), now=at(2.3), grace=GRACE)
        assert decided.fires == (Fire(at(2), late=False),)
        assert decided.fired_through == at(2)
        assert decided.next_fire_at == at(4)


# Down from 0 to 10.5 s: slots 2, 4, 6, 8 were missed, 10 is on time.
def test_skip_fires_only_the_on_time_slot() -> None:
    assert fired(CatchUp("skip"), through=0, now=10.5) == [Fire(at(10), False)]


def test_one_fires_the_latest_missed_slot_once() -> None:
    assert fired(CatchUp("one"), through=0, now=10.5) == [Fire(at(8), True), Fire(at(10), False)]


def test_all_fires_every_missed_slot_oldest_first() -> None:
    assert fired(CatchUp("all"), through=0, now=10.5) == [
        Fire(at(2), True),
        Fire(at(4), True),
        Fire(at(6), True),
        Fire(at(8), True),
        Fire(at(10), False),
    ]


def test_bounded_fires_the_latest_n_missed_slots() -> None:
    assert fired(CatchUp("bounded", 2), through=0, now=10.5) == [
        Fire(at(6), True),
        Fire(at(8), True),
        Fire(at(10), False),
    ]


def test_a_slot_older_than_the_grace_is_missed_too() -> None:
    # Down from 0 to 10.5 s with 0.2 s of grace: even slot 10 was missed.
    short = timedelta(seconds=0.2)
    assert fired(CatchUp("skip"), through=0, now=10.5, grace=short) == []
    assert fired(CatchUp("one"), through=0, now=10.5, grace=short) == [Fire(at(10), True)]
    decided = plan(EVERY_2S, CatchUp("skip"), fired_through=at(0), now=at(10.5), grace=short)
    assert decided.fired_through == at(10)  # decided: skipped for good
    assert decided.next_fire_at == at(12)


def test_all_continues_a_long_backlog_in_the_next_round() -> None:
    decided = plan(
        EVERY_2S, CatchUp("all"), fired_through=at(0), now=at(100.5), grace=GRACE, limit=10
    )
    assert [f.slot for f in decided.fires] == [at(2 * i) for i in range(1, 11)]
    assert decided.fired_through == at(20)
    assert decided.next_fire_at == at(100.5)  # due again at once
    rest = plan(EVERY_2S, CatchUp("all"), fired_through=at(20), now=at(100.5), grace=GRACE)
    assert [f.slot for f in rest.fires] == [at(2 * i) for i in range(11, 51)]
    assert rest.fires[-1] == Fire(at(100), False)


def test_an_interval_schedule_catches_up_as_well() -> None:
    decided = plan(Every(60), CatchUp("one"), fired_through=at(0), now=at(610), grace=GRACE)
    assert decided.fires == (Fire(at(540), True), Fire(at(600), False))


def test_next_fire_is_the_next_slot_to_come() -> None:
    assert next_fire(EVERY_2S, fired_through=at(0), now=at(10.5)) == at(12)
    assert next_fire(EVERY_2S, fired_through=at(20), now=at(10.5)) == at(22)


def test_bounded_needs_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CatchUp("bounded", 0)
