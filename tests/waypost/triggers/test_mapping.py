"""Goal mappings: JSON pointers, variables and text templates (pure)."""

from __future__ import annotations

import pytest

from waypost.triggers.errors import MappingError
from waypost.triggers.mapping import GoalMapping, pointer

BODY = {
    "issue": {"title": "Charged twice", "number": 42, "labels": ["billing", "urgent"]},
    "sender": {"login": "ada"},
    "a/b": {"~x": True},
}


def test_a_whole_reference_keeps_its_json_type_and_text_gets_values_inserted() -> None:
    mapping = GoalMapping(
        "support.ticket",
        {
            "subject": "${/issue/title}",
            "number": "${/issue/number}",
            "labels": "${/issue/labels}",
            "first_label": "${/issue/labels/0}",
            "body": "From ${/sender/login} (#${/issue/number}): ${/issue/labels}",
            "when": "${fire_time}",
            "channel": "github",
            "nested": [{"escaped": "$${/not/a/reference}"}],
        },
    )

    goal_input = mapping.apply(BODY, {"fire_time": "2026-12-04T12:00:00+00:00"})

    assert goal_input == {
        "subject": "Charged twice",
        "number": 42,
        "labels": ["billing", "urgent"],
        "first_label": "billing",
        "body": 'From ada (#42): ["billing", "urgent"]',
        "when": "2026-12-04T12:00:00+00:00",
        "channel": "github",
        "nested": [{"escaped": "${/not/a/reference}"}],
    }
    assert mapping.references() == [
        "/issue/title",
        "/issue/number",
        "/issue/labels",
        "/issue/labels/0",
        "/sender/login",
        "fire_time",
    ]


def test_pointers_follow_rfc_6901_escapes_and_the_empty_pointer_is_the_whole_body() -> None:
    assert pointer(BODY, "/a~1b/~0x") is True
    assert pointer(BODY, "") == BODY


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ({"x": "${/issue/missing}"}, "nothing at /issue/missing"),
        ({"x": "${/issue/labels/7}"}, "nothing at /issue/labels/7"),
        ({"x": "${/issue/title/deeper}"}, "nothing at /issue/title/deeper"),
        ({"x": "${delivery_id}"}, "not a variable of this trigger (it has: fire_time)"),
    ],
)
def test_a_reference_that_finds_nothing_says_which_and_where(
    template: dict[str, str], says: str
) -> None:
    with pytest.raises(MappingError, match=says.replace("(", r"\(").replace(")", r"\)")):
        GoalMapping("support.ticket", template).apply(BODY, {"fire_time": "now"})


def test_a_bad_goal_type_or_reference_is_refused_when_the_mapping_is_made() -> None:
    with pytest.raises(ValueError, match="not a goal type"):
        GoalMapping("Support Ticket", {})
    with pytest.raises(ValueError, match="neither a JSON pointer"):
        GoalMapping("support.ticket", {"x": "${not a name}"})
