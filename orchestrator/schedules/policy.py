"""What a schedule fires when it is due (pure): the slots, and when it is due next.

A slot is *on time* when it is the latest slot that has come and the scheduler sees it
at most ``grace`` after its time; every other slot that came since the schedule's
``fired_through`` mark was *missed* (the orchestrators were down, or busy past the next
slot). The catch-up policy decides the missed ones:

    skip        none: only on-time slots fire
    one         the latest missed slot, once
    all         every missed slot, oldest first (``limit`` per round; the rest next round)
    bounded N   the latest N missed slots

Slots that came while a schedule was paused are not missed: resuming moves the mark to
the moment of the resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from orchestrator.schedules.timing import Timing, latest_between, slots_between

CatchUpKind = Literal["skip", "one", "all", "bounded"]


@dataclass(frozen=True, slots=True)
class CatchUp:
    """A catch-up policy; ``count`` is N of ``bounded``."""

    kind: CatchUpKind = "one"
    count: int = 1

    def __post_init__(self) -> None:
        if self.kind == "bounded" and self.count < 1:
            raise ValueError("bounded catch-up needs N of at least 1")

    def __str__(self) -> str:
        return f"bounded: {self.count}" if self.kind == "bounded" else self.kind

    def missed_to_fire(
        self, timing: Timing, after: datetime, before: datetime, limit: int
    ) -> list[datetime]:
        """The missed slots in (``after``, ``before``) this policy fires, oldest first."""
        until = before - timedelta(microseconds=1)  # ``before`` itself is not missed
        if self.kind == "skip":
            return []
        if self.kind == "all":
            return slots_between(timing, after, until, limit)
        return latest_between(timing, after, until, 1 if self.kind == "one" else self.count)


@dataclass(frozen=True, slots=True)
class Fire:
    """One slot to fire; ``late`` for a missed slot fired by the catch-up policy."""

    slot: datetime
    late: bool


@dataclass(frozen=True, slots=True)
class Plan:
    """What one round does with a schedule: fire ``fires``, then mark every slot up to
    ``fired_through`` as decided, and look again at ``next_fire_at``."""

    fires: tuple[Fire, ...]
    fired_through: datetime
    next_fire_at: datetime


def plan(
    timing: Timing,
    catch_up: CatchUp,
    *,
    fired_through: datetime,
    now: datetime,
    grace: timedelta,
    limit: int = 100,
) -> Plan:
    """The round of a schedule whose slots up to ``fired_through`` are decided, at ``now``;
    at most ``limit`` fires (``all`` continues in the next round, which is due at once)."""
    latest = latest_between(timing, fired_through, now, 1)
    if not latest:
        return Plan((), fired_through, timing.after(fired_through))
    newest = latest[0]
    on_time = newest if now - newest <= grace else None
    missed_before = on_time if on_time is not None else newest + timedelta(microseconds=1)
    late = catch_up.missed_to_fire(timing, fired_through, missed_before, limit)
    fires = [Fire(slot, True) for slot in late]
    if len(fires) == limit and catch_up.kind == "all":
        # More missed slots may remain: decide up to the last one fired, come back now.
        return Plan(tuple(fires), fires[-1].slot, now)
    if on_time is not None:
        fires.append(Fire(on_time, False))
    return Plan(tuple(fires), newest, timing.after(newest))


def next_fire(timing: Timing, *, fired_through: datetime, now: datetime) -> datetime:
    """The next slot to come (what listings show): the first after both ``now`` and the
    decided slots."""
    return timing.after(max(now, fired_through))
