"""Playbooks: the workflow template of one goal type, as loaded and checked.

A step field that comes from the playbook document is declared once, here: its default
and, in its ``option()`` metadata, the key it is read from and how its value is
converted. The loader builds every ``Step`` from those declarations (``step_options``),
so a new plain step option is one schema property, one field line in ``Step`` and its
use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, cast

from waypost.durations import parse_duration

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


def read_condition(raw: Mapping[str, Any]) -> Condition:
    """A condition from its (schema-checked) document: ``{all: [...]}``, ``{any: [...]}``,
    ``{not: ...}`` or ``{ref: ..., OPERATOR: value}``."""
    if "all" in raw:
        return AllOf(tuple(read_condition(c) for c in raw["all"]))
    if "any" in raw:
        return AnyOf(tuple(read_condition(c) for c in raw["any"]))
    if "not" in raw:
        return Not(read_condition(raw["not"]))
    (operator,) = [key for key in raw if key != "ref"]
    return Compare(raw["ref"], cast(Operator, operator), raw[operator])


@dataclass(frozen=True, slots=True)
class Option:
    """Where a step field comes from in the playbook document (``option()`` puts it in the
    field's metadata).

    ``key`` is the document key. ``read`` converts the document's value (taken as written
    when None); ``read_in_step`` converts a value whose meaning depends on the step's
    other fields, given the step those make. ``merge``: the step's object and the one in
    ``defaults:`` are merged key by key (the step's keys win), instead of the step's
    replacing the default's."""

    key: str
    read: Callable[[Any], Any] | None = None
    read_in_step: Callable[[Any, Step], Any] | None = None
    merge: bool = False


_OPTION = "waypost.option"  # the field metadata key of an Option


def option(
    key: str = "",
    *,
    read: Callable[[Any], Any] | None = None,
    read_in_step: Callable[[Any, Step], Any] | None = None,
    merge: bool = False,
) -> Mapping[str, Option]:
    """The metadata of a ``Step`` field read from the document's ``key`` (default: the
    field's name): ``field(default=..., metadata=option(...))``. The field's default is
    the option's; a field without one is required, so the schema must require its key."""
    return {_OPTION: Option(key, read, read_in_step, merge)}


def step_options() -> Iterator[tuple[str, Option]]:
    """(field name, Option) of every ``Step`` field read from the document, in order."""
    for declared in fields(Step):
        found = declared.metadata.get(_OPTION)
        if found is not None:
            yield declared.name, replace(found, key=found.key or declared.name)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Retry delays: ``initial`` doubling per attempt up to ``max``, with jitter; a field
    left out falls back to the orchestrator's setting."""

    initial_s: float | None = None
    max_s: float | None = None

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> Backoff | None:
        """``{initial: 1s, max: 30s}``; None when both are left out."""
        if not raw:
            return None
        return cls(
            parse_duration(raw["initial"]) if "initial" in raw else None,
            parse_duration(raw["max"]) if "max" in raw else None,
        )


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
    approvals: int = 1  # different reviewers who must approve (2: four eyes)

    @property
    def warning_s(self) -> float:
        """How long before the deadline an escalation shows a warning."""
        return self.warn_before_s if self.warn_before_s is not None else self.sla_s / 5

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> ReviewPolicy:
        """``{group, priority, sla, warn_before, on_timeout: {action, group}, approvals}``;
        a key left out keeps the default above."""
        timeout = raw.get("on_timeout", {})
        given = {
            "group": raw.get("group"),
            "priority": raw.get("priority"),
            "sla_s": parse_duration(raw["sla"]) if "sla" in raw else None,
            "warn_before_s": parse_duration(raw["warn_before"]) if "warn_before" in raw else None,
            "on_timeout": timeout.get("action"),
            "timeout_group": timeout.get("group"),
            "approvals": raw.get("approvals"),
        }
        return cls(**{name: value for name, value in given.items() if value is not None})


@dataclass(frozen=True, slots=True)
class OnReject:
    """What a reviewer's rejection does to the workflow."""

    action: Literal["fail", "skip", "goto"] = "fail"
    goto: str | None = None

    @classmethod
    def read(cls, raw: str | Mapping[str, Any]) -> OnReject:
        """``fail``, ``skip`` or ``{goto: STEP}``."""
        if isinstance(raw, str):
            return cls(cast(Literal["fail", "skip"], raw))
        return cls("goto", raw["goto"])


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

    @classmethod
    def read(cls, raw: Mapping[str, Any], step: Step) -> Fallback:
        """``{capability: NAME, retries: N}``; ``retries`` defaults to the step's."""
        return cls(raw["capability"], raw.get("retries", step.retries))


@dataclass(frozen=True, slots=True)
class Step:
    """One step: a task for ``capability`` once ``depends_on`` finished and ``when`` holds.

    Each field declared with ``option()`` is read from the step's document merged with
    the playbook's ``defaults:`` (what the schema allows there), as docs/playbooks.md
    describes. The state machine reads a step from the playbook version that planned
    its workflow (``env.playbook``), not from copies in rows or events (the recipe "Add a
    step field" in docs/architecture.md).
    """

    name: str = field(metadata=option())
    capability: str = field(metadata=option())
    depends_on: tuple[str, ...] = field(default=(), metadata=option(read=tuple))
    input: Mapping[str, Any] = field(default_factory=dict, metadata=option())
    when: Condition | None = field(default=None, metadata=option(read=read_condition))
    timeout_s: float = field(default=60.0, metadata=option("timeout", read=parse_duration))
    retries: int = field(default=2, metadata=option())
    backoff: Backoff | None = field(default=None, metadata=option(read=Backoff.read, merge=True))
    description: str = field(default="", metadata=option())
    escalate_below: float | None = field(default=None, metadata=option())
    requires_approval: bool = field(default=False, metadata=option())
    review: ReviewPolicy = field(
        default_factory=ReviewPolicy, metadata=option(read=ReviewPolicy.read, merge=True)
    )
    on_reject: OnReject = field(default_factory=OnReject, metadata=option(read=OnReject.read))
    fallback: Fallback | None = field(default=None, metadata=option(read_in_step=Fallback.read))
    # When every attempt failed (the fallback's too): fail the workflow, dead-lettering
    # the last dispatch, or ask a person for the output (the human fallback).
    on_failure: Literal["fail", "escalate"] = field(default="fail", metadata=option())
    output_schema: Mapping[str, Any] | None = field(default=None, metadata=option())
    # The inbox line of the step's escalations (orchestrator/playbooks/summary.py).
    summary: str | None = field(default=None, metadata=option())
    # Built by the loader from output_schema (compiled once, not read from the document).
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


TRIGGER_KEY = "_trigger"  # the goal input's record of the event that started the workflow
TRIGGER_VARIABLES = ("event_id", "event_type", "source")  # what a trigger's input may use


@dataclass(frozen=True, slots=True)
class Trigger:
    """A CloudEvent that starts a workflow of its playbook (an event cascade).

    An event on ``topic`` (its name within the namespace, e.g. ``workflow.events``) whose
    ``ce_type`` is ``event_type`` and whose data has, at each JSON pointer of ``filter``,
    the value written there, becomes a goal whose input is ``input`` (a template of
    ``waypost.triggers.mapping``) applied to the event's data."""

    topic: str
    event_type: str
    filter: Mapping[str, Any] = field(default_factory=dict)
    input: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> Trigger:
        """``{topic, type, filter, input}`` (schema-checked)."""
        return cls(raw["topic"], raw["type"], raw.get("filter", {}), raw.get("input", {}))


PLANNER = "planner"  # the governance agent and escalation capability of the LLM planner


@dataclass(frozen=True, slots=True)
class Planning:
    """How the LLM planner plans the workflows of a goal type (``planner: llm``).

    A model gets the capability catalogue and the goal and answers with a plan (steps
    with capability, depends_on and input); a plan is checked before anything runs and
    refused plans are asked for again with the reasons, ``attempts`` times in all
    (``orchestrator/planning/``)."""

    instructions: str = ""
    capabilities: frozenset[str] | None = None  # None: every capability in the catalogue
    max_steps: int = 8
    attempts: int = 3
    budget_tokens: int | None = None  # the planner's tokens for one workflow, all attempts
    requires_approval: bool = False
    review: ReviewPolicy = field(default_factory=ReviewPolicy)

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> Planning:
        """``planning:`` of a playbook (schema-checked); a key left out keeps its default."""
        allowed = raw.get("capabilities")
        return cls(
            instructions=raw.get("instructions", ""),
            capabilities=frozenset(allowed) if allowed is not None else None,
            max_steps=raw.get("max_steps", 8),
            attempts=raw.get("attempts", 3),
            budget_tokens=raw.get("budget", {}).get("tokens"),
            requires_approval=raw.get("requires_approval", False),
            review=ReviewPolicy.read(raw.get("review", {})),
        )


@dataclass(frozen=True, slots=True)
class Playbook:
    """How a goal of ``type`` becomes a workflow: its ``steps``, or, when ``planning`` is
    set (``planner: llm``), a plan a model makes for each workflow."""

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
    triggers: tuple[Trigger, ...] = ()  # events that start a workflow of this playbook
    planning: Planning | None = None  # planner: llm (None: the steps are the plan)

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
