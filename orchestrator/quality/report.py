"""What the API, the console and the CLI show of decision quality: every version's
days over a range of UTC days ending today, with its drift markers; and the counts of a
sliding window (the drift check's and the metrics')."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection

from orchestrator.quality import store
from orchestrator.quality.counts import Counts, Key, VersionSeries, by_version, days_ending, series
from orchestrator.quality.drift import DriftState
from orchestrator.quality.store import Judged, Scope

MAX_DAYS = 90


@dataclass(frozen=True, slots=True)
class VersionReport:
    """One capability and agent version: its days, and the verdicts it drifted on."""

    series: VersionSeries
    drifts: tuple[DriftState, ...]

    @property
    def capability(self) -> str:
        """The capability."""
        return self.series.capability

    @property
    def version(self) -> str:
        """The agent version."""
        return self.series.version


@dataclass(frozen=True, slots=True)
class QualityReport:
    """Every version with results in the range, by capability and version."""

    days: tuple[date, ...]
    since: datetime
    until: datetime
    versions: tuple[VersionReport, ...]


def quality_report(
    conn: Connection,
    *,
    now: datetime,
    days: int,
    capability: str | None = None,
    version: str | None = None,
) -> QualityReport:
    """The last ``days`` UTC days (today included, 1 to MAX_DAYS), optionally of one
    capability and version."""
    listed = _days(now, days)
    since = datetime.combine(listed[0], time(), UTC)
    scope = Scope(since, now, capability, version)
    found = series(store.day_counts(conn, scope=scope), listed)
    drifted: dict[Key, list[DriftState]] = {}
    for state in store.drift_states(conn).values():
        if state.drifted:
            drifted.setdefault((state.capability, state.version), []).append(state)
    versions = tuple(
        VersionReport(each, tuple(drifted.get((each.capability, each.version), ())))
        for each in found
    )
    return QualityReport(tuple(listed), since, now, versions)


def recent_judged(
    conn: Connection,
    *,
    now: datetime,
    days: int,
    capability: str | None = None,
    version: str | None = None,
    limit: int = 50,
) -> list[Judged]:
    """Escalations of the last ``days`` UTC days (optionally of one capability and
    version), newest first, each with the agent's reasoning and the reviewer's verdict."""
    since = datetime.combine(_days(now, days)[0], time(), UTC)
    return store.judged(conn, scope=Scope(since, now, capability, version), limit=limit)


def window_counts(conn: Connection, *, now: datetime, window: timedelta) -> dict[Key, Counts]:
    """Counts per (capability, version) of the escalations and results of the last
    ``window``."""
    return by_version(store.day_counts(conn, scope=Scope(now - window, now)))


def _days(now: datetime, days: int) -> list[date]:
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}")
    return days_ending(now.astimezone(UTC).date(), days)
