"""When a schedule fires (pure): its slots, the instants it is due at.

A cron expression has 5 fields (minute hour day month weekday) or 6 with a leading
seconds field, read in an IANA time zone; daylight saving time is handled as croniter
does: a local time that does not exist (spring forward) fires at the first instant after
the gap, a local time that exists twice (fall back) fires twice. A fixed interval's
slots are whole multiples of it since 1970-01-01T00:00:00Z, so every replica computes
the same ones without asking anybody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Cron:
    """A cron expression in a time zone."""

    expression: str
    zone: ZoneInfo

    def __post_init__(self) -> None:
        fields = self.expression.split()
        if len(fields) not in (5, 6):
            raise ValueError(
                f"{self.expression!r} has {len(fields)} field(s); write 5 (minute hour day "
                "month weekday) or 6 with a leading seconds field"
            )
        if not croniter.is_valid(self.expression, second_at_beginning=True):
            raise ValueError(f"{self.expression!r} is not a valid cron expression")
        try:
            self._iterator(EPOCH).get_next()
        except Exception:  # croniter's CroniterBadDateError: no date matches in 50 years
            raise ValueError(f"{self.expression!r} never fires (no date matches it)") from None

    def _iterator(self, start: datetime) -> croniter:
        return croniter(
            self.expression,
            start.astimezone(self.zone),
            second_at_beginning=True,
        )

    def after(self, instant: datetime) -> datetime:
        """The first slot strictly after ``instant``."""
        return datetime.fromtimestamp(self._iterator(instant).get_next(), UTC)

    def latest(self, instant: datetime, count: int) -> list[datetime]:
        """The ``count`` latest slots at or before ``instant``, newest first."""
        # Slots are whole seconds: at or before the instant is before its next second.
        iterator = self._iterator(_floor(instant) + _SECOND)
        return [datetime.fromtimestamp(iterator.get_prev(), UTC) for _ in range(count)]


@dataclass(frozen=True, slots=True)
class Every:
    """A fixed interval of whole seconds, aligned to the Unix epoch."""

    seconds: int

    def __post_init__(self) -> None:
        if self.seconds < 1:
            raise ValueError("an interval must be at least 1 s")

    def after(self, instant: datetime) -> datetime:
        """The first slot strictly after ``instant``."""
        elapsed = (instant - EPOCH) // timedelta(seconds=self.seconds)
        return EPOCH + timedelta(seconds=(elapsed + 1) * self.seconds)

    def latest(self, instant: datetime, count: int) -> list[datetime]:
        """The ``count`` latest slots at or before ``instant``, newest first."""
        last = (instant - EPOCH) // timedelta(seconds=self.seconds)
        return [EPOCH + timedelta(seconds=(last - i) * self.seconds) for i in range(count)]


Timing = Cron | Every


def zone(name: str) -> ZoneInfo:
    """The IANA time zone of that name; ValueError saying what to write instead."""
    if "\x00" in name:
        raise ValueError("a time zone name cannot contain the NUL character")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a path, not a name
        raise ValueError(
            f"{name!r} is not an IANA time zone; write one like UTC, Europe/Berlin or "
            "America/New_York"
        ) from None


def slots_between(timing: Timing, after: datetime, until: datetime, limit: int) -> list[datetime]:
    """The slots in (``after``, ``until``], oldest first, at most ``limit`` of them."""
    found: list[datetime] = []
    slot = timing.after(after)
    while slot <= until and len(found) < limit:
        found.append(slot)
        slot = timing.after(slot)
    return found


def latest_between(timing: Timing, after: datetime, until: datetime, count: int) -> list[datetime]:
    """The ``count`` latest slots in (``after``, ``until``], oldest first."""
    return sorted(slot for slot in timing.latest(until, count) if slot > after)


def _floor(instant: datetime) -> datetime:
    return instant.replace(microsecond=0)
