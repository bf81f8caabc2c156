"""References and conditions: how a step's input is built from the goal and earlier outputs.

A string starting with ``$`` is a reference: ``$goal``, ``$goal.subject``,
``$steps.triage.output.category``, ``$steps.triage.confidence``, ``$workflow.id``.
Numeric segments index lists (``$steps.knowledge.output.articles.0``). In a mapping, a
key whose reference finds nothing is left out, so the agent's own default applies;
elsewhere a missing path resolves to null. Write ``$$`` for a literal leading ``$``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from orchestrator.playbooks.model import AllOf, AnyOf, Compare, Condition, Not

_MISSING = object()
MISSING = _MISSING  # what ``lookup`` returns for a reference that finds nothing


def is_reference(value: Any) -> bool:
    """True for a ``$...`` reference (not an escaped ``$$`` literal)."""
    return isinstance(value, str) and value.startswith("$") and not value.startswith("$$")


def resolve(template: Any, context: Mapping[str, Any]) -> Any:
    """Replace every reference in ``template`` with its value from ``context``."""
    if isinstance(template, str):
        if is_reference(template):
            value = lookup(template, context)
            return None if value is _MISSING else value
        return template[1:] if template.startswith("$$") else template
    if isinstance(template, Mapping):
        return {
            key: resolve(value, context)
            for key, value in template.items()
            if not (is_reference(value) and lookup(value, context) is _MISSING)
        }
    if isinstance(template, list | tuple):
        return [resolve(item, context) for item in template]
    return template


def lookup(reference: str, context: Mapping[str, Any]) -> Any:
    """The value a reference points to, or the private _MISSING marker."""
    current: Any = context
    for segment in reference[1:].split("."):
        if isinstance(current, Mapping) and segment in current:
            current = current[segment]
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            return _MISSING
    return current


def references(template: Any) -> Iterator[str]:
    """Every reference inside a template or condition."""
    if isinstance(template, str):
        if is_reference(template):
            yield template
    elif isinstance(template, Mapping):
        for value in template.values():
            yield from references(value)
    elif isinstance(template, list | tuple):
        for item in template:
            yield from references(item)
    elif isinstance(template, Compare):
        yield template.ref
    elif isinstance(template, AllOf | AnyOf):
        for condition in template.conditions:
            yield from references(condition)
    elif isinstance(template, Not):
        yield from references(template.condition)


def referenced_step(reference: str) -> str | None:
    """The step a reference reads (``$steps.NAME...``), if any."""
    parts = reference[1:].split(".")
    return parts[1] if len(parts) >= 2 and parts[0] == "steps" else None


def evaluate(condition: Condition, context: Mapping[str, Any]) -> bool:
    """Whether a step's ``when`` condition holds."""
    if isinstance(condition, AllOf):
        return all(evaluate(c, context) for c in condition.conditions)
    if isinstance(condition, AnyOf):
        return any(evaluate(c, context) for c in condition.conditions)
    if isinstance(condition, Not):
        return not evaluate(condition.condition, context)
    found = lookup(condition.ref, context)
    if condition.operator == "exists":
        return (found is not _MISSING and found is not None) == bool(condition.value)
    value = None if found is _MISSING else found
    return _compare(condition.operator, value, condition.value)


def _same(left: Any, right: Any) -> bool:
    """JSON equality: true is not 1 and false is not 0, as in JSON itself."""
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    return bool(left == right)


def _compare(operator: str, left: Any, right: Any) -> bool:
    if operator == "eq":
        return _same(left, right)
    if operator == "ne":
        return not _same(left, right)
    if operator == "in":
        return any(_same(left, item) for item in right)
    if operator == "not_in":
        return not any(_same(left, item) for item in right)
    if not isinstance(left, int | float) or isinstance(left, bool):
        return False  # ordering against a non-number (or null) is false, never an error
    if operator == "gt":
        return bool(left > right)
    if operator == "gte":
        return bool(left >= right)
    if operator == "lt":
        return bool(left < right)
    return bool(left <= right)
