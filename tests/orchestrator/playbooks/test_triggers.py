"""A playbook's ``triggers:`` (event cascades): loaded, and refused by field and line."""

from __future__ import annotations

from textwrap import dedent

import pytest

from orchestrator.errors import PlaybookError, Problem
from orchestrator.playbooks.loader import load_text
from orchestrator.playbooks.model import Playbook, Trigger

STEPS = "steps:\n  - {name: echo, capability: echo}\n"


def _load(text: str) -> Playbook:
    return load_text(dedent(text) + STEPS, source="test.yaml")


def _problems(text: str) -> list[Problem]:
    with pytest.raises(PlaybookError) as caught:
        _load(text)
    return caught.value.problems


def test_triggers_load_with_topic_type_filter_and_input() -> None:
    playbook = _load(
        """\
        type: a.second
        triggers:
          - topic: workflow.events
            type: waypost.workflow.completed
            filter: {/type: a.first, /output/ok: true}
            input: {text: "${/output/text}", from: "${event_id}"}
            description: after every a.first
          - {topic: crm.changes, type: com.example.customer.updated}
        """
    )

    assert playbook.triggers == (
        Trigger(
            "workflow.events",
            "waypost.workflow.completed",
            {"/type": "a.first", "/output/ok": True},
            {"text": "${/output/text}", "from": "${event_id}"},
        ),
        Trigger("crm.changes", "com.example.customer.updated"),
    )


def test_a_playbook_without_triggers_has_none() -> None:
    assert _load("type: a.plain\n").triggers == ()


def test_a_trigger_without_a_type_or_with_an_unknown_key_is_located() -> None:
    problems = _problems(
        """\
        type: a.second
        triggers:
          - topic: workflow.events
          - {topic: workflow.events, type: waypost.workflow.failed, when: x}
        """
    )

    assert [(p.field, p.line) for p in problems] == [("triggers[0]", 3), ("triggers[1]", 4)]
    assert '"type" is a required property' in problems[0].message
    assert "'when' was unexpected" in problems[1].message


def test_a_filter_key_must_be_a_json_pointer() -> None:
    (problem,) = _problems(
        """\
        type: a.second
        triggers:
          - topic: workflow.events
            type: waypost.workflow.completed
            filter: {type: a.first}
        """
    )

    assert (problem.field, problem.line) == ("triggers[0].filter", 5)


def test_an_unknown_variable_or_unreadable_reference_in_the_input_is_located() -> None:
    problems = _problems(
        """\
        type: a.second
        triggers:
          - topic: workflow.events
            type: waypost.workflow.completed
            input: {text: "${fire_time}"}
          - topic: workflow.events
            type: waypost.workflow.completed
            input: {text: "${not a name}"}
        """
    )

    assert [(p.field, p.line) for p in problems] == [
        ("triggers[0].input", 5),
        ("triggers[1].input", 8),
    ]
    assert "${fire_time} is not a variable of a trigger; it has event_id, event_type, source" in (
        problems[0].message
    )
    assert "neither a JSON pointer" in problems[1].message


def test_an_event_type_the_workflow_events_topic_never_carries_is_refused() -> None:
    (problem,) = _problems(
        """\
        type: a.second
        triggers:
          - topic: workflow.events
            type: workflow.completed
        """
    )

    assert (problem.field, problem.line) == ("triggers[0].type", 4)
    assert "'workflow.completed' is not published on workflow.events" in problem.message
    assert "waypost.workflow.completed" in problem.message


def test_the_input_may_not_write_the_trigger_record() -> None:
    (problem,) = _problems(
        """\
        type: a.second
        triggers:
          - topic: workflow.events
            type: waypost.workflow.completed
            input: {_trigger: forged}
        """
    )

    assert problem.field == "triggers[0].input._trigger"
    assert "Waypost's record of the triggering event" in problem.message


def test_the_input_schema_does_not_cover_the_trigger_record() -> None:
    playbook = _load(
        """\
        type: a.strict
        input_schema:
          type: object
          additionalProperties: false
          properties: {text: {type: string}}
        """
    )

    assert playbook.input_problems({"text": "x", "_trigger": {"event_id": "e"}}) == []
    assert playbook.input_problems({"text": "x", "other": 1}) != []
