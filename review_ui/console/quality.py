"""The decision quality page: how reviewers judge each capability and agent version,
with a small trend chart per rate; and a version's recent escalations, the agent's
reasoning next to the reviewer's verdict. What each number means is in
``orchestrator/quality/counts.py`` (and docs/reviewing.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orchestrator.quality.counts import VERDICTS, Counts, Rates, VersionSeries
from orchestrator.quality.drift import DriftState
from orchestrator.quality.report import MAX_DAYS, QualityReport, quality_report, recent_judged
from review_ui.console.common import Reader, frame, url_number, url_text
from review_ui.console.render import pages
from review_ui.console.sparkline import Sparkline, sparkline
from review_ui.deps import ConnectionDep
from waypost.events import utcnow

router = APIRouter(include_in_schema=False)

DAY_CHOICES = (7, 14, 30, 90)
DEFAULT_DAYS = 14
_MAX_TEXT = 200

# The columns: (name, heading); the name is also the CSS class of its chart.
COLUMNS = (
    ("escalated", "Escalated"),
    ("approved", "Approved"),
    ("edited", "Edited"),
    ("rejected", "Rejected"),
    ("retried", "Retried"),
    ("distance", "Edit distance"),
    ("agreement", "Agreement"),
)


def share(name: str, rates: Rates) -> float | None:
    """The value of column ``name``."""
    if name in VERDICTS:
        return rates.verdict(name)
    return {
        "escalated": rates.escalation,
        "distance": rates.edit_distance,
        "agreement": rates.agreement,
    }[name]


def basis(name: str, counts: Counts) -> str:
    """What column ``name``'s value is made of (the cell's hover text)."""
    if name == "escalated":
        return f"{counts.escalated} of {max(counts.results, counts.escalated)} results"
    if name in VERDICTS:
        return f"{counts.verdict(name)} of {counts.decided} decided"
    if name == "distance":
        return f"mean of {counts.edits_measured} edited output(s)"
    return f"{counts.agreeing} of {counts.compared} decisions on days two or more reviewers decided"


@dataclass(frozen=True, slots=True)
class Cell:
    """One rate of one version: the range's value, what it counts, its daily trend."""

    name: str
    text: str
    title: str
    chart: Sparkline


@dataclass(frozen=True, slots=True)
class Row:
    """One capability and agent version."""

    capability: str
    version: str
    results: int
    decided: int
    cells: tuple[Cell, ...]
    drifts: tuple[DriftState, ...]
    decisions_url: str


@dataclass(frozen=True, slots=True)
class QualityQuery:
    """The page's filters, read leniently from the URL (bad values: the defaults)."""

    capability: str = ""
    version: str = ""
    days: int = DEFAULT_DAYS

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> QualityQuery:
        """The filters of a request."""
        return cls(
            capability=url_text(params, "capability", _MAX_TEXT),
            version=url_text(params, "version", _MAX_TEXT),
            days=url_number(str(params.get("days", "")), DEFAULT_DAYS, 1, MAX_DAYS),
        )

    def url(self, path: str = "/quality", **changes: str | int) -> str:
        """This page (or ``path``) with these filters, changed by ``changes``."""
        values = {"capability": self.capability, "version": self.version, "days": self.days}
        values.update(changes)
        kept = {k: v for k, v in values.items() if v not in ("", None)}
        return f"{path}?{urlencode(kept)}" if kept else path


def percent(value: float | None) -> str:
    """A share as a whole percentage; "—" when there is none."""
    return "—" if value is None else f"{value * 100:.0f} %"


def number(value: float | None) -> str:
    """A value in [0, 1] to two decimals; "—" when there is none."""
    return "—" if value is None else f"{value:.2f}"


def cell(name: str, series: VersionSeries) -> Cell:
    """Column ``name`` of a version's row."""
    show = number if name == "distance" else percent
    total = series.total
    values = [share(name, day.rates) for day in series.days]
    labels = [
        f"{day.day.isoformat()}: {show(value)}"
        for day, value in zip(series.days, values, strict=True)
    ]
    return Cell(
        name, show(share(name, Rates.of(total))), basis(name, total), sparkline(values, labels)
    )


def rows(report: QualityReport, query: QualityQuery) -> list[Row]:
    """The page's rows, by capability and version."""
    return [
        Row(
            capability=found.capability,
            version=found.version,
            results=found.series.total.results,
            decided=found.series.total.decided,
            cells=tuple(cell(name, found.series) for name, _ in COLUMNS),
            drifts=found.drifts,
            decisions_url=query.url(
                "/quality/decisions", capability=found.capability, version=found.version
            ),
        )
        for found in report.versions
    ]


@router.get("/quality")
def quality_page(request: Request, conn: ConnectionDep, principal: Reader) -> Response:
    """Every capability and agent version with results in the last days."""
    query = QualityQuery.parse(request.query_params)
    report = quality_report(
        conn,
        now=utcnow(),
        days=query.days,
        capability=query.capability or None,
        version=query.version or None,
    )
    context = frame(
        principal,
        query=query,
        rows=rows(report, query),
        columns=COLUMNS,
        report=report,
        day_choices=DAY_CHOICES,
        percent=percent,
    )
    return pages().render(request, "quality.html", context)


@router.get("/quality/decisions")
def decisions_page(request: Request, conn: ConnectionDep, principal: Reader) -> Response:
    """Recent escalations (of one capability and version, when the filters say), newest
    first: the agent's output and reasoning next to the reviewer's verdict and reason."""
    query = QualityQuery.parse(request.query_params)
    found = recent_judged(
        conn,
        now=utcnow(),
        days=query.days,
        capability=query.capability or None,
        version=query.version or None,
        limit=100,
    )
    context = frame(
        principal,
        query=query,
        judged=found,
        back_url=QualityQuery(days=query.days).url(),
        percent=percent,
        number=number,
    )
    return pages().render(request, "quality_decisions.html", context)
