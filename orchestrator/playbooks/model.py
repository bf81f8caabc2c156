"""Playbooks: the workflow template of one goal type, as loaded and checked."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Operator = Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists"]


@dataclass(frozen=True, slots=True)
class Compare:
    """``{ref: $steps.triage.output.urgency, in: [high, urgent]}``."""

    ref: str
    operator: Operator
    value: Any


@dataclass(frozen=True, slots=True)
class AllOf:
    """True when every condition is."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """True when at least one condition is."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """True when the condition is not."""

    condition: Condition


Condition = Compare | AllOf | AnyOf | Not


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry delays: ``initial`` doubling per attempt up to ``max``, with jitter; a field
    left out falls back to the orchestrator's setting."""

    initial_s: float | None = None
    max_s: float | None = None


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    """Who reviews a step's escalations, how urgently, and what a missed deadline does.

    Waiting past the SLA never approves: ``on_timeout`` reassigns to ``timeout_group``,
    rejects (running the step's ``on_reject``), or keeps waiting, marked overdue.
    """

    group: str = "reviewers"
    priority: int = 3  # 1 is the most urgent
    sla_s: float = 24 * 3600.0
    warn_before_s: float | None = None  # default: the last fifth of the SLA
    on_timeout: Literal["reassign", "reject", "wait"] = "wait"
    timeout_group: str | None = None

    @property
    def warning_s(self) -> float:
        """How long before the deadline an escalation shows a warning."""
        return self.warn_before_s if self.warn_before_s is not None else self.sla_s / 5


@dataclass(frozen=True, slots=True)
class OnReject:
    """What a reviewer's rejection does to the workflow."""

    action: Literal["fail", "skip", "goto"] = "fail"
    goto: str | None = None


@dataclass(frozen=True, slots=True)
class Fallback:
    """Where a step's task goes when its own capability cannot do it: its attempts ran
    out, or that capability's circuit is open. ``retries`` further attempts after the
    first one on the fallback."""

    capability: str
    retries: int = 2

    @property
    def max_attempts(self) -> int:
        """First attempt on the fallback plus its retries."""
        return self.retries + 1


@dataclass(frozen=True, slots=True)
class Step:
    """One step: a task for ``capability`` once ``depends_on`` finished and ``when`` holds."""

    name: str
    capability: str
    depends_on: tuple[str, ...] = ()
    input: Mapping[str, Any] = field(default_factory=dict)
    when: Condition | None = None
    timeout_s: float = 60.0
    retries: int = 2
    backoff: Backoff | None = None
    description: str = ""
    escalate_below: float | None = None
    requires_approval: bool = False
    review: ReviewPolicy = field(default_factory=ReviewPolicy)
    on_reject: OnReject = field(default_factory=OnReject)
    fallback: Fallback | None = None
    # When every attempt failed (the fallback's too): fail the workflow, dead-lettering
    # the last dispatch, or ask a person for the output (the human fallback).
    on_failure: Literal["fail", "escalate"] = "fail"
    output_schema: Mapping[str, Any] | None = None
    output_checker: Callable[[Any], list[tuple[str, str]]] | None = field(
        default=None, compare=False, repr=False
    )

    def output_problems(self, output: Any) -> list[tuple[str, str]]:
        """(field, message) for each way an edited output breaks ``output_schema``."""
        if not isinstance(output, dict):
            return [("output", "must be a JSON object")]
        return self.output_checker(output) if self.output_checker is not None else []

    @property
    def max_attempts(self) -> int:
        """First attempt plus retries."""
        return self.retries + 1


@dataclass(frozen=True, slots=True)
class Playbook:
    """How a goal of ``type`` becomes a workflow."""

    type: str
    steps: tuple[Step, ...]
    version: int = 1
    description: str = ""
    output: Any = None
    input_schema: Mapping[str, Any] | None = None
    source: str = "<memory>"
    input_checker: Callable[[Any], list[tuple[str, str]]] | None = field(
        default=None, compare=False, repr=False
    )
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    digest: str = ""  # SHA-256 of the canonical document: identifies this version

    def input_problems(self, goal_input: Any) -> list[tuple[str, str]]:
        """(field, message) for each way ``goal_input`` breaks the ``input_schema``."""
        return self.input_checker(goal_input) if self.input_checker is not None else []

    def input_errors(self, goal_input: Any) -> list[str]:
        """Why ``goal_input`` breaks the playbook's ``input_schema`` (empty when it fits)."""
        return [f"{where}: {message}" for where, message in self.input_problems(goal_input)]

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    @property
    def capabilities(self) -> frozenset[str]:
        """Every capability the steps use, fallbacks included."""
        return frozenset(
            capability
            for step in self.steps
            for capability in (step.capability, step.fallback and step.fallback.capability)
            if capability
        )
