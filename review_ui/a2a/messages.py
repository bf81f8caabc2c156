"""An A2A message as a goal (pure): the goal type is the skill the message's metadata
names, the goal input is its one data part, and the goal id comes from its message id,
so sending the same message twice makes one workflow."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from a2a.helpers import get_data_parts
from a2a.types.a2a_pb2 import Message, SendMessageRequest
from google.protobuf.json_format import MessageToDict

from orchestrator.errors import InvalidGoalInput, UnknownGoalType
from orchestrator.playbooks.registry import PlaybookRegistry
from review_ui.a2a.errors import InvalidParamsError
from waypost.events.storable import value_problem

SKILL_KEY = "skill"  # the message metadata key naming the goal type
GOAL_ID_PREFIX = "a2a:"
# The JSON API's Idempotency-Key pattern: the message id becomes a goal id the same way.
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,196}$")
_EXACT_INTEGERS = 2**53  # a double holds every integer up to here exactly


@dataclass(frozen=True, slots=True)
class GoalMessage:
    """The goal a message asks for."""

    goal_id: str
    type: str
    input: Mapping[str, Any]


def goal_id_of(message_id: str) -> str:
    """The goal (and workflow, and A2A task) id of a message id."""
    return GOAL_ID_PREFIX + message_id


def goal_of(request: SendMessageRequest, playbooks: PlaybookRegistry) -> GoalMessage:
    """The goal ``request`` asks for; InvalidParamsError says what is wrong with it."""
    message = request.message
    if message.task_id:
        raise InvalidParamsError(
            f"task {message.task_id!r} takes no further messages: a task waiting in "
            "input-required is answered by a reviewer in the Waypost console; send a new "
            "message without taskId to start another goal"
        )
    if not _MESSAGE_ID.match(message.message_id):
        raise InvalidParamsError(
            "the messageId must be 1-196 characters from letters, digits, '.', '_', ':' "
            "and '-' (a UUID will do)"
        )
    goal_type = _skill(message, playbooks)
    goal_input = _input(message)
    problem = value_problem(goal_input)
    if problem is not None:
        raise InvalidParamsError(f"the goal input cannot be stored: {problem}")
    try:
        playbooks.check_goal(goal_type, goal_input)
    except InvalidGoalInput as exc:
        errors = [{"field": where, "message": what} for where, what in exc.problems]
        raise InvalidParamsError(str(exc), data={"errors": errors}) from None
    return GoalMessage(goal_id_of(message.message_id), goal_type, goal_input)


def _skill(message: Message, playbooks: PlaybookRegistry) -> str:
    metadata = MessageToDict(message.metadata) if message.HasField("metadata") else {}
    skill = metadata.get(SKILL_KEY)
    known = ", ".join(playbooks.types())
    if not isinstance(skill, str) or not skill:
        raise InvalidParamsError(
            f"name the skill (the goal type) in the message metadata as {SKILL_KEY!r}: "
            f"one of {known}"
        )
    try:
        playbooks.require(skill)
    except UnknownGoalType:
        raise InvalidParamsError(
            f"unknown skill {skill!r}: the skills are the goal types {known} (see the agent card)"
        ) from None
    return skill


def _input(message: Message) -> dict[str, Any]:
    data = get_data_parts(message.parts)
    if len(data) != 1 or not isinstance(data[0], dict):
        found = "no data part" if not data else f"{len(data)} data part(s)"
        raise InvalidParamsError(
            f"the message needs exactly one data part holding the goal input as a JSON "
            f"object ({found}{'' if len(data) != 1 else ' that is not an object'})"
        )
    return _integral(data[0])  # type: ignore[no-any-return]


def _integral(value: Any) -> Any:
    """``value`` with whole numbers as integers: a data part holds every number as a
    double, and a goal input must read as it was written (``3``, not ``3.0``)."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT_INTEGERS:
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value
