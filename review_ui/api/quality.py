"""GET /api/v1/decision-quality: how reviewers judge each capability and agent version,
day by day; GET /api/v1/decision-quality/decisions: recent escalations (of a version),
the agent's reasoning next to the reviewer's verdict.

What each number means is in ``orchestrator/quality/counts.py`` (and docs/reviewing.md).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from orchestrator.quality.counts import Counts, Rates
from orchestrator.quality.drift import DriftState
from orchestrator.quality.report import (
    MAX_DAYS,
    QualityReport,
    VersionReport,
    quality_report,
    recent_judged,
)
from orchestrator.quality.store import Judged
from review_ui.auth.principal import Principal, api_roles
from review_ui.auth.roles import READ
from review_ui.deps import ConnectionDep
from review_ui.openapi import NO_NUL, problems
from waypost.events import utcnow

router = APIRouter(tags=["decision quality"])
Reader = Annotated[Principal, Depends(api_roles(READ))]

DEFAULT_DAYS = 14
Days = Annotated[
    int,
    Query(ge=1, le=MAX_DAYS, description="UTC days to show, today included."),
]


class QualityNumbers(BaseModel):
    """Counts and rates of a version over a day or a range of days."""

    results: int = Field(description="Agent attempts that returned an output.")
    escalated: int = Field(description="Results that waited for a reviewer.")
    decided: int = Field(description="Escalations a reviewer gave a verdict.")
    approved: int
    edited: int
    rejected: int
    retried: int
    escalation_rate: float | None = Field(description="escalated / results.")
    approval_rate: float | None = Field(description="approved / decided.")
    edit_rate: float | None = Field(description="edited / decided.")
    rejection_rate: float | None = Field(description="rejected / decided.")
    retry_rate: float | None = Field(description="retried / decided.")
    edit_distance: float | None = Field(
        description="Mean normalised edit distance of the edited outputs: 0 the same, 1 "
        "nothing in common."
    )
    agreement: float | None = Field(
        description="Share of decisions that gave their day's most common verdict, on "
        "days two or more reviewers decided; null if there were none."
    )

    @classmethod
    def numbers(cls, counts: Counts) -> dict[str, Any]:
        """The fields of some counts."""
        rates = Rates.of(counts)
        return {
            "results": counts.results,
            "escalated": counts.escalated,
            "decided": counts.decided,
            "approved": counts.approved,
            "edited": counts.edited,
            "rejected": counts.rejected,
            "retried": counts.retried,
            "escalation_rate": rates.escalation,
            "approval_rate": rates.approved,
            "edit_rate": rates.edited,
            "rejection_rate": rates.rejected,
            "retry_rate": rates.retried,
            "edit_distance": rates.edit_distance,
            "agreement": rates.agreement,
        }


class QualityDayPublic(QualityNumbers):
    """One UTC day of a version (escalations by the day they opened)."""

    day: date


class DriftPublic(BaseModel):
    """A rate of the version past its threshold, as the drift check last found it."""

    verdict: Literal["rejected", "edited"]
    rate: float
    threshold: float
    count: int
    decided: int
    since: datetime = Field(description="When the check found the rate past the threshold.")

    @classmethod
    def of(cls, state: DriftState) -> DriftPublic:
        """The public view of a drifted state."""
        return cls(
            verdict=state.verdict,
            rate=state.rate,
            threshold=state.threshold,
            count=state.count,
            decided=state.decided,
            since=state.changed_at,
        )


class VersionQualityPublic(QualityNumbers):
    """One capability and agent version: its numbers over the range, and each day."""

    capability: str
    version: str
    days: list[QualityDayPublic] = Field(description="Every day of the range, oldest first.")
    drifts: list[DriftPublic] = Field(description="Rates past their threshold now.")

    @classmethod
    def of(cls, found: VersionReport) -> VersionQualityPublic:
        """The public view of a version's report."""
        return cls(
            capability=found.capability,
            version=found.version,
            **cls.numbers(found.series.total),
            days=[
                QualityDayPublic(day=day.day, **cls.numbers(day.counts))
                for day in found.series.days
            ],
            drifts=[DriftPublic.of(state) for state in found.drifts],
        )


class QualityPublic(BaseModel):
    """Every version with results or escalations in the range."""

    days: int
    since: datetime
    until: datetime
    items: list[VersionQualityPublic]

    @classmethod
    def of(cls, report: QualityReport) -> QualityPublic:
        """The public view of a report."""
        return cls(
            days=len(report.days),
            since=report.since,
            until=report.until,
            items=[VersionQualityPublic.of(found) for found in report.versions],
        )


class JudgedPublic(BaseModel):
    """An escalation: the agent's output and reasoning, and the reviewer's verdict."""

    escalation_id: str
    workflow_id: str
    capability: str
    version: str = Field(description="The version of the agent that answered its task.")
    step: str
    kind: str
    status: str
    opened_at: datetime
    confidence: float | None
    reasoning: list[str] = Field(description="The agent's reasoning, as the reviewer saw it.")
    proposed: Any = Field(description="The output the agent proposed.")
    verdict: Literal["approved", "edited", "rejected", "retried"] | None = Field(
        description="null: not decided yet."
    )
    reviewer: str | None
    reason: str | None = Field(description="The reviewer's reason.")
    decided_at: datetime | None
    edited: Any = Field(None, description="The reviewer's output, for an edit.")
    edit_distance: float | None

    @classmethod
    def of(cls, judged: Judged) -> JudgedPublic:
        """The public view of a judged escalation."""
        return cls(
            escalation_id=judged.escalation_id,
            workflow_id=judged.workflow_id,
            capability=judged.capability,
            version=judged.version,
            step=judged.step,
            kind=judged.kind,
            status=judged.status,
            opened_at=judged.opened_at,
            confidence=judged.confidence,
            reasoning=judged.reasoning,
            proposed=judged.proposed,
            verdict=judged.verdict,
            reviewer=judged.reviewer,
            reason=judged.reason,
            decided_at=judged.decided_at,
            edited=judged.edited,
            edit_distance=judged.edit_distance,
        )


class JudgedListPublic(BaseModel):
    """Escalations in the range, newest first."""

    items: list[JudgedPublic]


Text = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]


@router.get(
    "/decision-quality",
    response_model=QualityPublic,
    responses=problems(401, 422, 429, 503, why={422: "A filter out of range."}),
)
def decision_quality(
    connection: ConnectionDep,
    _: Reader,
    capability: Text = None,
    version: Text = None,
    days: Days = DEFAULT_DAYS,
) -> QualityPublic:
    """For each capability and agent version with results in the last `days` UTC days:
    how many results escalated, and how reviewers decided them (approved, edited,
    rejected, retried), with the edit distance of edits and reviewer agreement, in
    total and per day; and the rates the drift check found past their threshold."""
    report = quality_report(
        connection, now=utcnow(), days=days, capability=capability, version=version
    )
    return QualityPublic.of(report)


@router.get(
    "/decision-quality/decisions",
    response_model=JudgedListPublic,
    responses=problems(401, 422, 429, 503, why={422: "A filter out of range."}),
)
def decisions(
    connection: ConnectionDep,
    _: Reader,
    capability: Text = None,
    version: Text = None,
    days: Days = DEFAULT_DAYS,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JudgedListPublic:
    """Escalations of agent results opened in the last `days` UTC days (of a capability
    and version, if given), newest first: what the agent proposed and its reasoning, next
    to the reviewer's verdict and reason."""
    found = recent_judged(
        connection,
        now=utcnow(),
        days=days,
        capability=capability,
        version=version,
        limit=limit,
    )
    return JudgedListPublic(items=[JudgedPublic.of(j) for j in found])
