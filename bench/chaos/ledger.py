"""Reading the chaos agents' ledger and counting what it shows.

The counts come from the ledger only, never from the platform's tables:

- handler re-runs: executions of a (task id, attempt) beyond its first;
- retries: attempts of a task id beyond its first one that executed (a lease expired
  and the orchestrator dispatched the task again);
- duplicate effects: workflows whose effect capability ran under more than one task id
  (the orchestrator applied the first step's completion twice and dispatched the effect
  twice).
"""

from __future__ import annotations

import bisect
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos.ledger_agent import EFFECT


@dataclass(frozen=True, slots=True)
class Execution:
    """One ledger line: a handler that ran to the end."""

    step: str
    capability: str
    workflow: str
    task: str
    attempt: int
    pid: int
    time: float


class LedgerReader:
    """Reads a ledger file as it grows (only complete lines)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.executions: list[Execution] = []
        self.malformed = 0
        self._offset = 0
        self._partial = b""

    def poll(self) -> list[Execution]:
        """Read what was appended since the last call; returns the new executions."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        new: list[Execution] = []
        for line in lines:
            if not line.strip():
                continue
            try:
                new.append(Execution(**json.loads(line)))
            except (ValueError, TypeError):
                self.malformed += 1
        self.executions.extend(new)
        return new


@dataclass(frozen=True)
class LedgerCounts:
    """What the ledger says about one run."""

    executions: int
    handler_reruns: int
    reruns_by_capability: dict[str, int]
    retries: int
    later_attempts: int
    """Executions of an attempt after the first (whether or not the first one ran)."""
    duplicate_effects: int
    duplicate_effect_examples: list[str]
    effected: frozenset[str] = field(repr=False)
    """Workflows whose effect ran at least once."""
    reruns_after_fault: list[int] = field(default_factory=list)
    """Handler re-runs that ran between each fault and the next (index = fault)."""


def count(
    executions: Sequence[Execution], fault_times: Sequence[float] = (), examples: int = 5
) -> LedgerCounts:
    """Count re-runs, retries and duplicate effects."""
    seen: Counter[tuple[str, int]] = Counter()
    reruns: list[Execution] = []
    attempts: defaultdict[str, set[int]] = defaultdict(set)
    effect_tasks: defaultdict[str, set[str]] = defaultdict(set)
    for execution in sorted(executions, key=lambda e: e.time):
        key = (execution.task, execution.attempt)
        if seen[key]:
            reruns.append(execution)
        seen[key] += 1
        attempts[execution.task].add(execution.attempt)
        if execution.capability == EFFECT:
            effect_tasks[execution.workflow].add(execution.task)
    duplicates = sorted(w for w, tasks in effect_tasks.items() if len(tasks) > 1)
    return LedgerCounts(
        executions=len(executions),
        handler_reruns=len(reruns),
        reruns_by_capability=dict(Counter(e.capability for e in reruns)),
        retries=sum(len(a) - 1 for a in attempts.values()),
        later_attempts=sum(e.attempt > 1 for e in executions),
        duplicate_effects=len(duplicates),
        duplicate_effect_examples=duplicates[:examples],
        effected=frozenset(effect_tasks),
        reruns_after_fault=_by_fault((e.time for e in reruns), fault_times),
    )


def _by_fault(times: Iterable[float], fault_times: Sequence[float]) -> list[int]:
    """How many of ``times`` fall after each fault and before the next one."""
    ordered = sorted(fault_times)
    counts = [0] * len(ordered)
    for at in times:
        index = bisect.bisect_right(ordered, at) - 1
        if index >= 0:
            counts[index] += 1
    return counts
