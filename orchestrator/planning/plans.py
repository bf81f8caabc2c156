"""Plans: what the LLM planner answers, and the checks a plan passes before it runs (pure).

A plan is a JSON object::

    {"steps": [{"name": "triage", "capability": "triage", "depends_on": [],
                "input": {"text": "$goal.text"}, "description": "why this step"}, ...],
     "output": {"reply": "$steps.reply.output"}}          # optional

It becomes a playbook document of its goal type (the goal type's ``input_schema`` and
``defaults:`` with the plan's steps and output), stored as a playbook version like any
other, so the state machine runs a planned workflow exactly as a playbook's. The checks,
each answered with reasons a model (or a reviewer) can act on:

- the shape: an object with 1 to ``max_steps`` steps, each with only the keys above;
- the playbook checks: unique names, known ``depends_on``, no cycle, references that read
  only steps the step depends on;
- every capability is in the catalogue (and in ``planning.capabilities`` when set);
- every step's input, with ``$goal`` references filled in from the goal input, matches
  its capability's input schema (values read from other steps are checked when they run).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from orchestrator.errors import PlaybookError
from orchestrator.playbooks.loader import load_document
from orchestrator.playbooks.mapping import MISSING, is_reference, lookup, referenced_step
from orchestrator.playbooks.model import Planning, Playbook

STEP_KEYS = ("name", "capability", "depends_on", "input", "description")
PLAN_KEYS = ("steps", "output")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.DOTALL)
# Errors about a combination of subschemas: reported at a parent, they may stem from a
# value only known when the workflow runs (a placeholder below the parent).
_COMBINATIONS = (
    jsonschema_rs.ValidationErrorKind.AnyOf,
    jsonschema_rs.ValidationErrorKind.OneOfNotValid,
    jsonschema_rs.ValidationErrorKind.OneOfMultipleValid,
    jsonschema_rs.ValidationErrorKind.Not,
)


@dataclass(frozen=True, slots=True)
class Capability:
    """What the planner is told about one capability, and what a plan is checked against."""

    name: str
    description: str = ""
    input_schema: Mapping[str, Any] | None = None
    output_schema: Mapping[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        """Its entry in the prompt's catalogue."""
        entry: dict[str, Any] = {"capability": self.name, "description": self.description}
        if self.input_schema:
            entry["input_schema"] = dict(self.input_schema)
        if self.output_schema:
            entry["output_schema"] = dict(self.output_schema)
        return entry


Catalogue = Mapping[str, Capability]


@dataclass(frozen=True, slots=True)
class Checked:
    """A plan as checked: the playbook it makes when it passed, else the reasons why not."""

    playbook: Playbook | None
    problems: tuple[str, ...] = ()


def parse_answer(text: str) -> tuple[Any, str | None]:
    """The JSON value in a model's answer (or in the first ```json fence of it), or why
    there is none."""
    fenced = _FENCE.search(text)
    candidates = [text] + ([fenced.group(1)] if fenced is not None else [])
    error: json.JSONDecodeError | None = None
    for candidate in candidates:
        try:
            return json.loads(candidate), None
        except json.JSONDecodeError as exc:
            error = exc
    assert error is not None
    return None, (
        f"the answer is not JSON ({error.msg} at line {error.lineno}, column {error.colno}); "
        "answer with the plan as one JSON object and nothing else"
    )


def plan_document(goal: Playbook, plan: Mapping[str, Any]) -> dict[str, Any]:
    """The playbook document a plan makes: the goal type's, with the plan's steps."""
    document: dict[str, Any] = {
        "type": goal.type,
        "version": goal.version,
        "description": goal.description or f"planned {goal.type}",
        "steps": [dict(step) for step in plan["steps"]],
    }
    for key in ("input_schema", "defaults"):
        if key in goal.document:
            document[key] = goal.document[key]
    if plan.get("output") is not None:
        document["output"] = plan["output"]
    return document


def check_plan(
    goal: Playbook,
    plan: Any,
    *,
    goal_input: Mapping[str, Any],
    catalogue: Catalogue | None,
) -> Checked:
    """Check ``plan`` for the goal type ``goal`` (with ``planning``). ``catalogue`` None
    skips the catalogue checks (capabilities and input schemas): the state machine's
    re-check of a plan a reviewer edited, which the console checked in full."""
    planning = goal.planning or Planning()
    problems = _shape(plan, planning)
    if problems:
        return Checked(None, tuple(problems))
    try:
        playbook = load_document(
            plan_document(goal, plan), source=f"plan for {goal.type} v{goal.version}"
        )
    except PlaybookError as exc:
        return Checked(None, tuple(str(problem) for problem in exc.problems))
    problems = _capabilities(playbook, planning, catalogue)
    if catalogue is not None:
        problems += _inputs(playbook, goal_input, catalogue)
    return Checked(None if problems else playbook, tuple(problems))


def _shape(plan: Any, planning: Planning) -> list[str]:
    if not isinstance(plan, dict):
        return ['the plan must be a JSON object {"steps": [...]}']
    problems = [
        f"{key!r} is not part of a plan; a plan has only {' and '.join(PLAN_KEYS)}"
        for key in plan
        if key not in PLAN_KEYS
    ]
    steps = plan.get("steps")
    if not isinstance(steps, list) or not steps:
        return [*problems, "steps: the plan needs a list of at least one step"]
    if len(steps) > planning.max_steps:
        problems.append(
            f"steps: {len(steps)} steps is more than this goal type allows "
            f"({planning.max_steps}); combine or drop steps"
        )
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            problems.append(f"steps[{index}]: a step is a JSON object")
            continue
        problems += [
            f"steps[{index}]: {key!r} cannot be set by a plan; a step has only "
            + ", ".join(STEP_KEYS)
            for key in step
            if key not in STEP_KEYS
        ]
    return problems


def _capabilities(playbook: Playbook, planning: Planning, catalogue: Catalogue | None) -> list[str]:
    problems = []
    allowed = planning.capabilities
    for index, step in enumerate(playbook.steps):
        if allowed is not None and step.capability not in allowed:
            problems.append(
                f"steps[{index}].capability: {step.capability!r} is not one this goal type "
                f"may use; use one of {', '.join(sorted(allowed))}"
            )
        elif catalogue is not None and step.capability not in catalogue:
            known = ", ".join(sorted(catalogue)) or "none"
            problems.append(
                f"steps[{index}].capability: unknown capability {step.capability!r}; "
                f"the catalogue has {known}"
            )
    return problems


def _inputs(playbook: Playbook, goal_input: Mapping[str, Any], catalogue: Catalogue) -> list[str]:
    problems = []
    for index, step in enumerate(playbook.steps):
        capability = catalogue.get(step.capability)
        if capability is None or not capability.input_schema:
            continue
        value, later = _fill(dict(step.input), {"goal": dict(goal_input)}, ())
        try:
            validator = jsonschema_rs.validator_for(dict(capability.input_schema))
        except (ValueError, jsonschema_rs.ValidationError):
            continue  # a worker announced a schema that is not one; nothing to check against
        for error in validator.iter_errors(value):
            where = tuple(str(part) for part in error.instance_path)
            if any(where[: len(path)] == path for path in later):
                continue  # a value read from another step: checked when the step runs
            if isinstance(error.kind, _COMBINATIONS) and any(
                path[: len(where)] == where for path in later
            ):
                continue  # may fail only for a placeholder of such a value
            field = ".".join(where) or "(the whole input)"
            problems.append(
                f"steps[{index}].input ({step.name}, capability {step.capability}): "
                f"{field}: {error.message}"
            )
    return problems


def _fill(
    template: Any, context: Mapping[str, Any], path: tuple[str, ...]
) -> tuple[Any, list[tuple[str, ...]]]:
    """``template`` with its ``$goal`` references filled in; the paths of values that are
    only known when the workflow runs (references to steps, or to the workflow)."""
    if isinstance(template, str) and is_reference(template):
        if referenced_step(template) is not None or not template.startswith("$goal"):
            return None, [path]
        found = lookup(template, context)  # found nothing: null, as when the step runs
        return (None if found is MISSING else found), []
    if isinstance(template, str):
        return (template[1:] if template.startswith("$$") else template), []
    if isinstance(template, Mapping):
        filled: dict[str, Any] = {}
        later: list[tuple[str, ...]] = []
        for key, item in template.items():
            if (
                isinstance(item, str)
                and is_reference(item)
                and item.startswith("$goal")
                and lookup(item, context) is MISSING
            ):
                continue  # as at run time: a key whose reference finds nothing is left out
            filled[key], inner = _fill(item, context, (*path, str(key)))
            later += inner
        return filled, later
    if isinstance(template, Sequence) and not isinstance(template, str | bytes):
        items: list[Any] = []
        later = []
        for position, item in enumerate(template):
            value, inner = _fill(item, context, (*path, str(position)))
            items.append(value)
            later += inner
        return items, later
    return template, []
