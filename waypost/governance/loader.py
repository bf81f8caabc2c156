"""Loading policy YAML: schema-checked (``policy.schema.json``), then built into a
``Policy``; every problem names the file, the field and the line."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import yaml

from waypost.durations import parse_duration as parse_duration  # re-exported
from waypost.governance.errors import PolicyError, Problem
from waypost.governance.model import (
    ActionRule,
    AppliesTo,
    BudgetLimit,
    Period,
    Policy,
    RateLimit,
    Resource,
)
from waypost.yamlfile import YamlSyntaxError, field_path, line_of, parse

_PERIODS: tuple[tuple[str, Period], ...] = (("per_day", "day"), ("per_workflow", "workflow"))
_RESOURCES: tuple[Resource, ...] = ("tokens", "cost_usd")
_NAMING = "lower-case letters, digits, '.', '_' or '-', starting with a letter"
_ACTION_NAMING = (
    "lower-case letters, digits, '.', '_', '-', ':' or '/', starting with a letter "
    "(a tool call is mcp:SERVER/TOOL)"
)
# Plainer words for the schema's "not valid under any of the schemas listed in 'oneOf'"
# and "does not match '^...$'", by the $defs entry that failed.
_EXPLAIN = {
    "action_rule": f'is not an action rule: write an action name ({_ACTION_NAMING}), "*", or '
    "{action: NAME, reason: TEXT}",
    "action_or_any": f'is not an action name: use {_ACTION_NAMING}, or "*" for every action',
    "action": f"is not an action name: use {_ACTION_NAMING}",
    "name": f"is not an agent or capability name: use {_NAMING}",
    "duration": "is not a duration: write seconds above zero (30) or 500ms, 30s, 5m, 1h, 1d",
    "scope": 'is not a data scope: use lower-case dotted names such as crm.contacts, or "*"',
    "risk_level": "is not a risk level: use low, medium, high or critical",
}


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema every policy file must satisfy."""
    text = resources.files("waypost.governance").joinpath("policy.schema.json").read_text()
    document: dict[str, Any] = json.loads(text)
    return document


@cache
def _validator() -> Any:
    return jsonschema_rs.validator_for(schema())


def digest_of(document: Mapping[str, Any]) -> str:
    """SHA-256 of a policy's canonical JSON: comments and layout do not change it."""
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def load_file(path: Path) -> Policy:
    """Load and check one policy file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(str(path), [Problem("(file)", f"cannot be read: {exc}")]) from None
    return load_text(text, source=str(path), default_name=path.stem)


def load_text(text: str, *, source: str = "<text>", default_name: str = "policy") -> Policy:
    """Load and check a policy from YAML text."""
    try:
        node, document = parse(text)
    except YamlSyntaxError as exc:
        raise PolicyError(source, [exc.problem]) from None
    if not isinstance(document, dict):
        raise PolicyError(
            source, [Problem("(file)", "a policy is a mapping with version and applies_to")]
        )
    problems = [_problem(error, node) for error in _validator().iter_errors(document)]
    if not problems:
        for index, limit in enumerate(document.get("rate_limits", [])):
            if parse_duration(limit["per"]) <= 0:
                path: list[str | int] = ["rate_limits", index, "per"]
                problems.append(
                    Problem(field_path(path), "must be longer than 0", line_of(node, path))
                )
    if problems:
        # In file order, so that fixing them top to bottom works.
        problems.sort(key=lambda problem: problem.line or 0)
        raise PolicyError(source, problems)
    return _build(document, source, default_name, node)


def load_dirs(directories: Iterable[Path]) -> list[Policy]:
    """Every ``*.yaml``/``*.yml`` policy in these directories, in path order."""
    return [load_file(path) for path in policy_files(directories)]


def policy_files(directories: Iterable[Path]) -> list[Path]:
    """The policy files of these directories, in path order (a missing one is an error)."""
    files: list[Path] = []
    for directory in directories:
        if not directory.is_dir():
            raise PolicyError(str(directory), [Problem("(directory)", "is not a directory")])
        files += sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    return files


def _problem(error: Any, node: yaml.Node | None) -> Problem:
    """A schema error as a problem, at the line of the offending key where there is one."""
    path = list(error.instance_path)
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
        return Problem(
            field_path(path), _explain(error), line_of(node, [*path, kind.unexpected[0]])
        )
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.PropertyNames):
        name = str(kind.error.instance)
        return Problem(field_path(path), _explain(kind.error), line_of(node, [*path, name]))
    return Problem(field_path(path), _explain(error), line_of(node, path))


def _explain(error: Any) -> str:
    schema_path = [str(part) for part in error.schema_path]
    if schema_path[:2] == ["properties", "applies_to"]:
        return (
            'applies_to is "*" (every agent) or a mapping with agents and/or capabilities, '
            "each a list of names"
        )
    definition = schema_path[1] if schema_path[:1] == ["$defs"] else None
    keyword = schema_path[-1] if schema_path else ""
    if definition in _EXPLAIN and keyword in ("oneOf", "pattern", "enum"):
        return f"{json.dumps(error.instance)} {_EXPLAIN[definition]}"
    return str(error.message)


def _build(document: Mapping[str, Any], source: str, default_name: str, node: Any) -> Policy:
    lines: dict[str, int] = {}

    def at(*path: str | int) -> str:
        """The rule path of ``path``, remembering its line for decisions to cite."""
        name = field_path(path) if path else ""
        line = line_of(node, path)
        if line is not None:
            lines[name] = line
        return name

    at()
    actions = document.get("actions", {})
    allow = None
    if "allow" in actions:
        allow = frozenset(actions["allow"])
        at("actions", "allow")
    deny = tuple(
        _action_rule(raw, at("actions", "deny", i)) for i, raw in enumerate(actions.get("deny", []))
    )
    approvals = tuple(
        _action_rule(raw, at("require_approval", i))
        for i, raw in enumerate(document.get("require_approval", []))
    )
    rate_limits = tuple(
        RateLimit(
            action=raw["action"],
            limit=raw["limit"],
            per_s=parse_duration(raw["per"]),
            per=raw["per"] if isinstance(raw["per"], str) else f"{raw['per']}s",
            path=at("rate_limits", i),
        )
        for i, raw in enumerate(document.get("rate_limits", []))
    )
    budgets = document.get("budgets", {})
    limits = []
    for key, period in _PERIODS:
        for resource in _RESOURCES:
            if resource in budgets.get(key, {}):
                amount = float(budgets[key][resource])
                limits.append(BudgetLimit(period, resource, amount, at("budgets", key, resource)))
    scopes = None
    if "scopes" in document:
        scopes = {action: frozenset(granted) for action, granted in document["scopes"].items()}
        at("scopes")
        for action in scopes:
            at("scopes", action)
    risk = dict(document.get("risk", {}))
    for action in risk:
        at("risk", action)
    if "four_eyes_from" in document:
        at("four_eyes_from")
    applies_to = document["applies_to"]
    at("applies_to")
    return Policy(
        name=document.get("name", default_name),
        version=document["version"],
        digest=digest_of(document),
        source=source,
        description=document.get("description", ""),
        applies_to=AppliesTo(everyone=True)
        if applies_to == "*"
        else AppliesTo(
            agents=frozenset(applies_to.get("agents", ())),
            capabilities=frozenset(applies_to.get("capabilities", ())),
        ),
        allow=allow,
        deny=deny,
        approvals=approvals,
        rate_limits=rate_limits,
        budgets=tuple(limits),
        warn_at=float(budgets.get("warn_at", 0.8)),
        scopes=scopes,
        risk=risk,
        four_eyes_from=document.get("four_eyes_from"),
        lines=lines,
    )


def _action_rule(raw: str | Mapping[str, Any], path: str) -> ActionRule:
    if isinstance(raw, str):
        return ActionRule(raw, path)
    return ActionRule(raw["action"], path, raw.get("reason", ""))
