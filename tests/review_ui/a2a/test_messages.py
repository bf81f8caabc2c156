"""A message as a goal, without fixtures (the built-in playbooks)."""

from __future__ import annotations

from typing import Any

import pytest
from a2a.helpers import new_data_part, new_text_part
from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageRequest
from a2a.utils.errors import InvalidParamsError
from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Struct

from orchestrator.playbooks.registry import PlaybookRegistry
from review_ui.a2a.messages import goal_of

PLAYBOOKS = PlaybookRegistry.load()
ACCOUNT = {"account_id": "acct-1", "threshold": 3}


def request(
    parts: list[Part],
    *,
    skill: object = "billing.anomaly",
    message_id: str = "m-1",
    task_id: str = "",
) -> SendMessageRequest:
    metadata: dict[str, Any] = {} if skill is None else {"skill": skill}
    message = Message(
        message_id=message_id,
        role=Role.ROLE_USER,
        parts=parts,
        task_id=task_id,
        metadata=ParseDict(metadata, Struct()),
    )
    return SendMessageRequest(message=message)


def test_the_skill_names_the_goal_type_and_the_data_part_is_the_input() -> None:
    goal = goal_of(request([new_text_part("please"), new_data_part(ACCOUNT)]), PLAYBOOKS)

    assert (goal.goal_id, goal.type) == ("a2a:m-1", "billing.anomaly")
    assert goal.input == ACCOUNT
    # A data part holds numbers as doubles; whole ones come back as integers.
    assert type(goal.input["threshold"]) is int


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (request([new_text_part("hi")]), "exactly one data part"),
        (request([new_data_part(ACCOUNT), new_data_part(ACCOUNT)]), "2 data part(s)"),
        (request([new_data_part([1, 2])]), "that is not an object"),
        (request([new_data_part(ACCOUNT)], skill=None), "name the skill (the goal type)"),
        (request([new_data_part(ACCOUNT)], skill=7), "name the skill (the goal type)"),
        (request([new_data_part(ACCOUNT)], skill="nope"), "unknown skill 'nope'"),
        (request([new_data_part({"threshold": 3})]), "account_id"),
        (request([new_data_part(ACCOUNT)], message_id="a b"), "messageId must be"),
        (request([new_data_part(ACCOUNT)], task_id="a2a:m-0"), "takes no further messages"),
    ],
)
def test_a_message_that_cannot_be_a_goal_is_refused_saying_why(
    bad: SendMessageRequest, says: str
) -> None:
    with pytest.raises(InvalidParamsError) as refused:
        goal_of(bad, PLAYBOOKS)

    assert says in refused.value.message
    assert type(refused.value) is InvalidParamsError  # the SDK answers -32602 by exact class


def test_the_schema_errors_are_listed_by_field() -> None:
    with pytest.raises(InvalidParamsError) as refused:
        goal_of(request([new_data_part({"account_id": ""})]), PLAYBOOKS)

    assert refused.value.data is not None
    assert [e["field"] for e in refused.value.data["errors"]] == ["account_id"]
