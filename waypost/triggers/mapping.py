"""From a foreign message to a goal: a goal type and an input template (pure).

A mapping is written in YAML wherever a trigger is configured (webhooks, MQTT/NATS
bridges, schedules)::

    goal:
      type: support.ticket
      input:
        subject: "${/issue/title}"          # the value at this JSON pointer, as it is
        body: "From ${/sender/login}: ${/issue/body}"   # text with values in it
        received: "${received_at}"          # a variable the trigger provides
        channel: github                     # anything else is copied as written

A string that is exactly one reference becomes the referenced value with its JSON type;
a reference inside longer text is inserted as text (JSON for objects and arrays). A
reference starting with ``/`` is a JSON pointer (RFC 6901) into the message body; any
other is a variable the trigger names (``fire_time`` for schedules, ``delivery_id`` for
webhooks, ``topic`` for MQTT, ...). ``$${`` writes a literal ``${``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from waypost.triggers.errors import MappingError

GOAL_TYPE = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MISSING = object()


@dataclass(frozen=True)
class GoalMapping:
    """A goal type and the template its input is made from."""

    goal_type: str
    input: Mapping[str, Any]

    def __post_init__(self) -> None:
        if not GOAL_TYPE.match(self.goal_type):
            raise ValueError(
                f"{self.goal_type!r} is not a goal type: lower-case letters, digits, '.', "
                "'_' or '-', starting with a letter"
            )
        for text in _strings(self.input):
            for reference in references(text):
                if not (reference.startswith("/") or reference == "" or _VARIABLE.match(reference)):
                    raise ValueError(
                        f"${{{reference}}} is neither a JSON pointer (starting with '/') nor "
                        "a variable name"
                    )

    def references(self) -> list[str]:
        """Every reference of the template, in order, each once."""
        found: list[str] = []
        for text in _strings(self.input):
            found.extend(r for r in references(text) if r not in found)
        return found

    def apply(self, body: Any, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The goal input for a message ``body`` (parsed JSON) and the trigger's
        ``variables``; MappingError naming the reference that found nothing."""
        result = _fill(self.input, body, variables or {})
        assert isinstance(result, dict)  # the template is a mapping
        return result


def references(text: str) -> list[str]:
    """The references in one template string (``${/a/b}`` gives ``/a/b``)."""
    return [m.group(1) for m in _REFERENCE.finditer(text) if m.group(0) != "$${"]


def pointer(document: Any, path: str) -> Any:
    """The value at JSON pointer ``path`` (RFC 6901; ``""`` is the whole document);
    MappingError saying where the path stops."""
    if path == "":
        return document
    value = document
    walked = ""
    for raw in path[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        walked += "/" + raw
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            raise MappingError(f"the message has nothing at {walked} (mapping ${{{path}}})")
    return value


def _fill(template: Any, body: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(template, str):
        return _fill_text(template, body, variables)
    if isinstance(template, Mapping):
        return {str(key): _fill(value, body, variables) for key, value in template.items()}
    if isinstance(template, list):
        return [_fill(value, body, variables) for value in template]
    return template


def _fill_text(text: str, body: Any, variables: Mapping[str, Any]) -> Any:
    whole = _REFERENCE.fullmatch(text)
    if whole is not None and whole.group(0) != "$${":
        return _resolve(whole.group(1), body, variables)

    def insert(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        value = _resolve(match.group(1), body, variables)
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True)

    return _REFERENCE.sub(insert, text)


def _resolve(reference: str, body: Any, variables: Mapping[str, Any]) -> Any:
    if reference == "" or reference.startswith("/"):
        return pointer(body, reference)
    value = variables.get(reference, _MISSING)
    if value is _MISSING:
        known = ", ".join(sorted(variables)) or "none"
        raise MappingError(f"${{{reference}}} is not a variable of this trigger (it has: {known})")
    return value


def _strings(template: Any) -> list[str]:
    if isinstance(template, str):
        return [template]
    if isinstance(template, Mapping):
        return [s for value in template.values() for s in _strings(value)]
    if isinstance(template, list):
        return [s for value in template for s in _strings(value)]
    return []
