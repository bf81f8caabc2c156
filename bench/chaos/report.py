"""The result of a scenario run, its JSON line and the final table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from bench.chaos.model import PlanningCounts


@dataclass
class FaultRecord:
    """One fault as it happened."""

    label: str
    target: str
    at_s: float
    """Seconds since the first goal was sent."""
    at_time: float
    """time.time() when it struck."""
    submitted_before: int
    old_pid: int | None
    new_pid: int | None = None
    restart_s: float | None = None
    """Seconds until the child ran under a new PID (kills), was continued (freeze), or
    the model answered again (outage)."""
    ready_s: float | None = None
    """Seconds until /readyz answered 200 again."""
    recovery_s: float | None = None
    """Seconds until every workflow accepted before the fault was completed (None: never)."""
    reruns: int = 0
    """Handler re-runs that ran after this fault and before the next one."""
    note: str = ""


@dataclass
class RunResult:
    """Everything a scenario run measured."""

    scenario: str
    size: int
    run: int
    runs: int
    data_dir: str
    error: str | None = None
    duration_s: float = 0.0
    submitted: int = 0
    not_accepted: int = 0
    refused_examples: list[str] = field(default_factory=list)
    submit_retries: int = 0
    submit_retry_reasons: dict[str, int] = field(default_factory=dict)
    completed: int = 0
    lost: int = 0
    stuck: int = 0
    failed: int = 0
    missing: int = 0
    lost_effect_ran: int = 0
    """Lost workflows whose effect the ledger shows ran."""
    completed_without_effect: int = 0
    failed_reasons: dict[str, int] = field(default_factory=dict)
    stuck_examples: list[str] = field(default_factory=list)
    executions: int = 0
    handler_reruns: int = 0
    reruns_by_capability: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    later_attempts: int = 0
    duplicate_effects: int = 0
    duplicate_effect_examples: list[str] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    exited: list[str] = field(default_factory=list)
    """Waypost children no fault targeted that run under a new PID or not at all."""
    supervisor: list[str] = field(default_factory=list)
    log_counts: dict[str, int] = field(default_factory=dict)
    """Warning/error/exception lines per log file."""
    log_notes: list[str] = field(default_factory=list)
    """The most frequent of those lines, grouped (printed, not in the JSON line)."""
    planning: PlanningCounts | None = None
    """Plans asked of the scripted model (scenarios of planned goals only)."""

    def problems(self) -> list[str]:
        """Why this run fails (empty: it passed)."""
        found = []
        if self.error:
            found.append(f"error: {self.error}")
        if self.lost:
            found.append(f"{self.lost} lost ({self.stuck} stuck, {self.failed} failed)")
        if self.duplicate_effects:
            found.append(f"{self.duplicate_effects} duplicate effect(s)")
        if self.not_accepted:
            found.append(f"{self.not_accepted} goal(s) never accepted")
        if self.completed_without_effect:
            found.append(f"{self.completed_without_effect} completed without their effect")
        if self.exited:
            found.append("exited: " + ", ".join(self.exited))
        if self.planning is not None:
            found += self.planning.problems()
        return found

    def json_line(self) -> str:
        """One JSON object on one line."""
        data: dict[str, Any] = asdict(self)
        del data["log_notes"]
        data["recovery_s"] = [f.recovery_s for f in self.faults]
        data["ok"] = not self.problems()
        return json.dumps(data, separators=(",", ":"), default=str)


_COLUMNS = (
    ("scenario", 17),
    ("size", 5),
    ("run", 5),
    ("submitted", 9),
    ("completed", 9),
    ("lost", 5),
    ("stuck", 5),
    ("failed", 6),
    ("dup-effects", 11),
    ("re-runs", 7),
    ("retries", 7),
    ("attempts>1", 10),
    ("post-retries", 12),
    ("recovery-s", 18),
    ("result", 6),
)


def _recovery(run: RunResult) -> str:
    return ",".join("never" if f.recovery_s is None else f"{f.recovery_s:.1f}" for f in run.faults)


def table(results: Sequence[RunResult], out: TextIO) -> None:
    """The final per-scenario table, one row per run."""
    out.write("  ".join(name.rjust(width) for name, width in _COLUMNS).rstrip() + "\n")
    for run in results:
        cells = (
            run.scenario,
            run.size,
            f"{run.run}/{run.runs}",
            run.submitted,
            run.completed,
            run.lost,
            run.stuck,
            run.failed,
            run.duplicate_effects,
            run.handler_reruns,
            run.retries,
            run.later_attempts,
            run.submit_retries,
            _recovery(run) or "-",
            "ok" if not run.problems() else "FAIL",
        )
        out.write(
            "  ".join(str(c).rjust(w) for c, (_, w) in zip(cells, _COLUMNS, strict=True)) + "\n"
        )
    for run in results:
        for problem in run.problems():
            out.write(f"  {run.scenario} {run.size} run {run.run}: {problem}\n")
