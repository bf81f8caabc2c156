"""Loading playbook YAML: schema-checked, then checked as a graph, errors by file/field/line."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import yaml

from orchestrator.errors import PlaybookError, Problem
from orchestrator.playbooks import summary
from orchestrator.playbooks.mapping import referenced_step, references
from orchestrator.playbooks.model import (
    TRIGGER_KEY,
    TRIGGER_VARIABLES,
    Planning,
    Playbook,
    Step,
    Trigger,
    step_options,
)
from waypost.durations import parse_duration as parse_duration  # re-exported
from waypost.events import (
    DecisionQualityDrifted,
    TaskEscalated,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)
from waypost.events.envelope import TYPE_PREFIX
from waypost.triggers.mapping import GoalMapping
from waypost.yamlfile import YamlSyntaxError, field_path, line_of, parse


@cache
def _validator() -> Any:
    document = json.loads(
        resources.files("orchestrator.playbooks").joinpath("playbook.schema.json").read_text()
    )
    return jsonschema_rs.validator_for(document)


def load_file(path: Path) -> Playbook:
    """Load and check one playbook file."""
    return load_text(path.read_text(encoding="utf-8"), source=str(path))


def load_text(text: str, *, source: str = "<text>") -> Playbook:
    """Load and check a playbook from YAML text."""
    try:
        node, document = parse(text)
    except YamlSyntaxError as exc:
        raise PlaybookError(source, [exc.problem]) from None
    return load_document(document, source=source, node=node)


def load_document(
    document: Any, *, source: str = "<document>", node: yaml.Node | None = None
) -> Playbook:
    """Check and build a playbook from its parsed document (``node`` gives line numbers)."""
    if not isinstance(document, dict):
        raise PlaybookError(
            source, [Problem("(file)", "a playbook is a mapping with type and steps")]
        )
    schema_problems = [
        Problem(
            field_path(error.instance_path), _explain(error), line_of(node, error.instance_path)
        )
        for error in _validator().iter_errors(document)
    ]
    if schema_problems:
        # In the order of the file, not of the schema's keywords.
        schema_problems.sort(key=lambda problem: problem.line or 0)
        raise PlaybookError(source, schema_problems)
    playbook = _build(document, source)
    problems = _check_graph(playbook, node) + _check_triggers(playbook, node)
    if problems:
        raise PlaybookError(source, problems)
    return playbook


def _explain(error: Any) -> str:
    """The schema's message, or a plainer one where the schema's would puzzle."""
    path = list(error.instance_path)
    if path[-1:] == ["summary"] and isinstance(error.instance, str):
        return summary.problem(error.instance) or str(error.message)
    if path[-1:] == ["fallback"] and not isinstance(error.instance, dict):
        return (
            f"{json.dumps(error.instance)} is not a fallback; write it as a mapping: "
            "fallback: {capability: NAME} (optionally with retries: N)"
        )
    if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.UnevaluatedProperties):
        # A step takes its options from step_options by $ref, so its unknown keys are
        # "unevaluated"; to a playbook's author they are simply not allowed.
        unexpected = list(error.kind.unexpected)
        names = ", ".join(repr(name) for name in unexpected)
        verb = "was" if len(unexpected) == 1 else "were"
        return f"Additional properties are not allowed ({names} {verb} unexpected)"
    return str(error.message)


def load_dirs(directories: Iterable[Path]) -> list[Playbook]:
    """Every ``*.yaml``/``*.yml`` playbook in these directories, in name order."""
    playbooks = []
    for directory in directories:
        if not directory.is_dir():
            raise PlaybookError(str(directory), [Problem("(directory)", "is not a directory")])
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            playbooks.append(load_file(path))
    return playbooks


def builtin_dir() -> Path:
    """The directory of the playbooks shipped with Waypost."""
    return Path(str(resources.files("orchestrator.playbooks").joinpath("builtin")))


def _build(document: Mapping[str, Any], source: str) -> Playbook:
    defaults = document.get("defaults", {})
    steps = tuple(_build_step(raw, defaults) for raw in document.get("steps", ()))
    return Playbook(
        type=document["type"],
        steps=steps,
        version=document.get("version", 1),
        description=document.get("description", ""),
        output=document.get("output"),
        input_schema=document.get("input_schema"),
        source=source,
        input_checker=_input_checker(document.get("input_schema")),
        document=document,
        digest=digest_of(document),
        triggers=tuple(Trigger.read(raw) for raw in document.get("triggers", ())),
        planning=Planning.read(document.get("planning", {}))
        if document.get("planner") == "llm"
        else None,
    )


def digest_of(document: Mapping[str, Any]) -> str:
    """SHA-256 of a playbook's canonical JSON: the identity of one playbook version."""
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _input_checker(schema: Mapping[str, Any] | None, root: str = "input") -> Any:
    if schema is None:
        return None
    try:
        validator = jsonschema_rs.validator_for(dict(schema))
    except (ValueError, jsonschema_rs.ValidationError):
        return None  # reported by _check_graph with the file and line

    def errors(goal_input: Any) -> list[tuple[str, str]]:
        if root == "input" and isinstance(goal_input, dict) and TRIGGER_KEY in goal_input:
            # Waypost's record of the event that started the workflow, not the author's
            # input: the playbook's input_schema does not cover it (docs/playbooks.md).
            goal_input = {k: v for k, v in goal_input.items() if k != TRIGGER_KEY}
        return [
            (field_path(e.instance_path) if e.instance_path else root, e.message)
            for e in validator.iter_errors(goal_input)
        ]

    return errors


def _build_step(raw: Mapping[str, Any], defaults: Mapping[str, Any]) -> Step:
    """A step from its document and the playbook's ``defaults:``, each field as ``Step``
    declares it (``option()`` in model.py); a key in neither leaves the field's default."""
    values: dict[str, Any] = {}
    later: dict[str, tuple[Callable[[Any, Step], Any], Any]] = {}  # need the built step
    for name, option in step_options():
        if option.key in raw:
            value = raw[option.key]
            if option.merge and option.key in defaults:
                value = {**defaults[option.key], **value}
        elif option.key in defaults:
            value = defaults[option.key]
        else:
            continue
        if option.read_in_step is not None:
            later[name] = (option.read_in_step, value)
        else:
            values[name] = option.read(value) if option.read is not None else value
    step = Step(**values, output_checker=_input_checker(values.get("output_schema"), "output"))
    return replace(step, **{name: read(value, step) for name, (read, value) in later.items()})


def _check_graph(playbook: Playbook, node: yaml.Node | None) -> list[Problem]:
    problems: list[Problem] = []
    names = [step.name for step in playbook.steps]
    index = {name: i for i, name in enumerate(names)}

    def problem(path: list[str | int], message: str) -> None:
        problems.append(Problem(field_path(path), message, line_of(node, path)))

    if playbook.planning is not None and names:
        problem(["steps"], "a playbook with planner: llm has no steps; the planner makes them")
    if playbook.planning is not None and playbook.output is not None:
        problem(["output"], "with planner: llm each plan sets its own output; remove output")
    if playbook.planning is None and "planning" in playbook.document:
        problem(["planning"], "planning: applies to planner: llm only; add planner: llm")
    for i, name in enumerate(names):
        if names.index(name) != i:
            problem(["steps", i, "name"], f"step name {name!r} is used twice")
    for i, step in enumerate(playbook.steps):
        for j, dependency in enumerate(step.depends_on):
            if dependency not in index:
                problem(["steps", i, "depends_on", j], f"no step named {dependency!r}")
            elif dependency == step.name:
                problem(["steps", i, "depends_on", j], "a step cannot depend on itself")
    if problems:
        return problems
    cycle = _find_cycle(playbook)
    if cycle:
        problem(["steps"], "steps depend on each other in a cycle: " + " -> ".join(cycle))
        return problems
    for i, step in enumerate(playbook.steps):
        upstream = _upstream(playbook, step.name)
        for field, template in (("input", step.input), ("when", step.when)):
            for reference in references(template):
                read = referenced_step(reference)
                if read is None:
                    continue
                if read not in index:
                    problem(["steps", i, field], f"{reference} reads unknown step {read!r}")
                elif read not in upstream:
                    problem(
                        ["steps", i, field],
                        f"{reference} reads step {read!r}, which {step.name!r} does not "
                        f"depend on; add {read!r} to depends_on",
                    )
    for i, step in enumerate(playbook.steps):
        target = step.on_reject.goto
        if (
            target is not None
            and target != step.name
            and target not in _upstream(playbook, step.name)
        ):
            problem(
                ["steps", i, "on_reject", "goto"],
                f"{target!r} is not {step.name!r} or a step it depends on; a rejection can "
                "only go back",
            )
        if step.fallback is not None and step.fallback.capability == step.capability:
            problem(
                ["steps", i, "fallback", "capability"],
                f"{step.capability!r} is the step's own capability; a fallback must be "
                "another capability",
            )
        if step.output_schema is not None:
            try:
                jsonschema_rs.validator_for(dict(step.output_schema))
            except (ValueError, jsonschema_rs.ValidationError) as exc:
                problem(["steps", i, "output_schema"], f"not a valid JSON Schema: {exc}")
    for reference in references(playbook.output):
        read = referenced_step(reference)
        if read is not None and read not in index:
            problem(["output"], f"{reference} reads unknown step {read!r}")
    if playbook.input_schema is not None:
        try:
            jsonschema_rs.validator_for(dict(playbook.input_schema))
        except (ValueError, jsonschema_rs.ValidationError) as exc:
            problem(["input_schema"], f"not a valid JSON Schema: {exc}")
    return problems


# What the orchestrator publishes on the workflow events topic.
_WORKFLOW_EVENT_TYPES = tuple(
    TYPE_PREFIX + payload.TYPE
    for payload in (
        WorkflowStarted,
        WorkflowCompleted,
        WorkflowFailed,
        WorkflowCancelled,
        TaskEscalated,
        DecisionQualityDrifted,
    )
)


def _check_triggers(playbook: Playbook, node: yaml.Node | None) -> list[Problem]:
    """Each trigger's input template must be readable and use only known variables; one
    on the workflow events topic must name an event type published there."""
    problems: list[Problem] = []

    def problem(path: list[str | int], message: str) -> None:
        problems.append(Problem(field_path(path), message, line_of(node, path)))

    for i, trigger in enumerate(playbook.triggers):
        if trigger.topic == "workflow.events" and trigger.event_type not in _WORKFLOW_EVENT_TYPES:
            problem(
                ["triggers", i, "type"],
                f"{trigger.event_type!r} is not published on workflow.events; the types "
                f"there are {', '.join(_WORKFLOW_EVENT_TYPES)}",
            )
        if TRIGGER_KEY in trigger.input:
            problem(
                ["triggers", i, "input", TRIGGER_KEY],
                f"{TRIGGER_KEY!r} is Waypost's record of the triggering event; use another key",
            )
        try:
            mapping = GoalMapping(playbook.type, trigger.input)
        except ValueError as exc:
            problem(["triggers", i, "input"], str(exc))
            continue
        for reference in mapping.references():
            if not reference.startswith("/") and reference not in ("", *TRIGGER_VARIABLES):
                problem(
                    ["triggers", i, "input"],
                    f"${{{reference}}} is not a variable of a trigger; it has "
                    f"{', '.join(TRIGGER_VARIABLES)} (and JSON pointers into the event's data)",
                )
    return problems


def _upstream(playbook: Playbook, name: str) -> set[str]:
    seen: set[str] = set()
    frontier = list(playbook.step(name).depends_on)
    while frontier:
        current = frontier.pop()
        if current not in seen:
            seen.add(current)
            frontier.extend(playbook.step(current).depends_on)
    return seen


def _find_cycle(playbook: Playbook) -> list[str]:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 1
        path.append(name)
        for dependency in playbook.step(name).depends_on:
            if state.get(dependency) == 1:
                return [*path[path.index(dependency) :], dependency]
            if dependency not in state and (found := visit(dependency)):
                return found
        path.pop()
        state[name] = 2
        return []

    for step in playbook.steps:
        if step.name not in state and (found := visit(step.name)):
            return found
    return []
