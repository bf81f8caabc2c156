"""Which goals an event starts (pure): the playbooks' triggers, their filters and input
mappings, the cascade depth limit, and one goal id per (playbook, event).

Every decision is made here before anything is written, so an event either starts all
the workflows its triggers describe or, refused (``CascadeError``), none of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.cascades.errors import CascadeDepthExceeded, CascadeRefused
from orchestrator.cascades.events import TriggerEvent
from orchestrator.playbooks.model import TRIGGER_KEY, Playbook, Trigger
from waypost.events.storable import value_problem
from waypost.topics import Topics
from waypost.triggers.errors import MappingError
from waypost.triggers.mapping import GoalMapping, pointer

DEFAULT_MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class Route:
    """One trigger of one playbook, on its full topic name."""

    topic: str
    playbook: Playbook
    index: int  # of the trigger in the playbook's ``triggers:``
    trigger: Trigger
    mapping: GoalMapping

    @property
    def name(self) -> str:
        """How messages name it: ``playbook P trigger N (file)``."""
        return f"playbook {self.playbook.type} trigger {self.index + 1} ({self.playbook.source})"


@dataclass(frozen=True, slots=True)
class Start:
    """A goal an event starts: its id, type and input (with the trigger record)."""

    goal_id: str
    goal_type: str
    input: Mapping[str, Any]


class Triggers:
    """Every trigger of a set of playbooks, by topic."""

    def __init__(self, playbooks: Iterable[Playbook], topics: Topics) -> None:
        self._topics = topics
        self._routes: dict[str, list[Route]] = {}
        for playbook in playbooks:
            for index, trigger in enumerate(playbook.triggers):
                topic = f"{topics.namespace}.{trigger.topic}"
                mapping = GoalMapping(playbook.type, trigger.input)
                route = Route(topic, playbook, index, trigger, mapping)
                self._routes.setdefault(topic, []).append(route)

    @property
    def topics(self) -> list[str]:
        """The topics to read, sorted (none: no playbook has triggers)."""
        return sorted(self._routes)

    def starts(self, topic: str, event: TriggerEvent, *, max_depth: int) -> list[Start]:
        """The goals ``event`` (read on ``topic``) starts, one per playbook; none when no
        trigger matches. CascadeError when it matches but may not start them."""
        matched: dict[str, Route] = {}  # the first matching trigger of each playbook
        for route in self._routes.get(topic, ()):
            if route.trigger.event_type != event.type or route.playbook.type in matched:
                continue
            if event.data_error is not None:
                raise CascadeRefused(
                    f"event {event.id} of type {event.type} matches {route.name}, but "
                    f"{event.data_error}; a trigger's filter and input read JSON data"
                )
            if filter_holds(route.trigger.filter, event.data):
                matched[route.playbook.type] = route
        if not matched:
            return []
        depth = event.depth
        if depth >= max_depth:
            raise CascadeDepthExceeded(
                f"cascade depth {max_depth} reached: event {event.id} ({event.type} from "
                f"{event.source}{_of_workflow(event)}) is at depth {depth} and would start "
                f"{', '.join(sorted(matched))} at depth {depth + 1}; triggers that start each "
                "other in a cycle stop here. If the chain is meant to be this long, raise "
                "WAYPOST_CASCADE_MAX_DEPTH"
            )
        return [self._start(route, event, depth + 1) for route in matched.values()]

    def _start(self, route: Route, event: TriggerEvent, depth: int) -> Start:
        variables = {"event_id": event.id, "event_type": event.type, "source": event.source}
        try:
            goal_input = route.mapping.apply(event.data, variables)
        except MappingError as exc:
            raise CascadeRefused(f"event {event.id} matches {route.name}, but {exc}") from None
        problems = [f"{at}: {why}" for at, why in route.playbook.input_problems(goal_input)]
        stored = value_problem(goal_input)
        if stored is not None:
            problems.append(f"the input cannot be stored: {stored}")
        if problems:
            raise CascadeRefused(
                f"event {event.id} matches {route.name}, but the input it maps breaks the "
                f"playbook's input_schema: {'; '.join(problems)}"
            )
        record = {
            "event_id": event.id,
            "event_type": event.type,
            "source": event.source,
            "topic": self._topics.short_name(route.topic),
            "depth": depth,
        }
        source_workflow = _workflow_of(event)
        if source_workflow is not None:
            record["workflow_id"] = source_workflow
        return Start(
            goal_id=goal_id(route.playbook.type, event),
            goal_type=route.playbook.type,
            input={**goal_input, TRIGGER_KEY: record},
        )


def goal_id(goal_type: str, event: TriggerEvent) -> str:
    """The goal (and workflow) id of the workflow of ``goal_type`` that ``event`` starts:
    the same event delivered again, or matching two triggers of one playbook, names the
    same workflow. CloudEvents ids are unique per source, so the source is part of it."""
    digest = hashlib.sha256(f"{goal_type}\n{event.source}\n{event.id}".encode()).hexdigest()
    return f"cascade-{digest[:32]}"


def filter_holds(expected: Mapping[str, Any], data: Any) -> bool:
    """True when the data has, at every JSON pointer of ``expected``, an equal value (a
    pointer that finds nothing does not hold)."""
    for path, value in expected.items():
        try:
            found = pointer(data, path)
        except MappingError:
            return False
        if not same_json(found, value):
            return False
    return True


def same_json(left: Any, right: Any) -> bool:
    """Equality as JSON means it: ``true`` is not ``1``; ``1`` is ``1.0``."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same_json(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(same_json, left, right))
    if isinstance(left, (dict, list)) or isinstance(right, (dict, list)):
        return False
    return bool(left == right)


def depth_of(goal_input: Mapping[str, Any]) -> int:
    """The cascade depth a workflow's input records (0: not started by a trigger)."""
    record = goal_input.get(TRIGGER_KEY)
    depth = record.get("depth") if isinstance(record, Mapping) else None
    return depth if isinstance(depth, int) and not isinstance(depth, bool) and depth > 0 else 0


def _workflow_of(event: TriggerEvent) -> str | None:
    found = event.data.get("workflow_id") if isinstance(event.data, dict) else None
    return found if isinstance(found, str) else None


def _of_workflow(event: TriggerEvent) -> str:
    workflow_id = _workflow_of(event)
    return f", workflow {workflow_id}" if workflow_id else ""
