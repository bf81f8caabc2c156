"""References and conditions: how step inputs are built and ``when`` is decided."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.playbooks.mapping import (
    evaluate,
    is_reference,
    lookup,
    referenced_step,
    references,
    resolve,
)
from orchestrator.playbooks.model import AllOf, AnyOf, Compare, Not, Operator

CONTEXT: dict[str, Any] = {
    "goal": {"subject": "Refund", "body": "charged twice", "tags": ["billing", "vip"], "n": 0},
    "steps": {
        "triage": {
            "output": {"category": "billing", "urgency": "high", "score": 7, "note": None},
            "confidence": 0.9,
            "status": "completed",
        },
        "knowledge": {
            "output": {"articles": [{"id": "a1", "title": "Refunds"}, {"id": "a2"}]},
            "confidence": 1.0,
            "status": "completed",
        },
    },
    "workflow": {"id": "wf-1", "type": "support.ticket"},
}


# --- resolve ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "value"),
    [
        ("$goal.subject", "Refund"),
        ("$goal", CONTEXT["goal"]),
        ("$steps.triage.output.category", "billing"),
        ("$steps.triage.confidence", 0.9),
        ("$workflow.id", "wf-1"),
        ("$steps.knowledge.output.articles.0.id", "a1"),
        ("$steps.knowledge.output.articles.1", {"id": "a2"}),
        ("$goal.tags.1", "vip"),
    ],
)
def test_a_reference_resolves_to_its_value(reference: str, value: Any) -> None:
    assert resolve(reference, CONTEXT) == value


def test_a_mapping_resolves_each_value() -> None:
    template = {"subject": "$goal.subject", "category": "$steps.triage.output.category", "k": 3}

    assert resolve(template, CONTEXT) == {"subject": "Refund", "category": "billing", "k": 3}


def test_a_missing_key_in_a_mapping_is_left_out() -> None:
    template = {"subject": "$goal.subject", "customer": "$goal.customer", "x": "$steps.nope.output"}

    # Left out, so the agent's own default applies rather than an explicit null.
    assert resolve(template, CONTEXT) == {"subject": "Refund"}


def test_a_present_null_in_a_mapping_is_kept() -> None:
    assert resolve({"note": "$steps.triage.output.note"}, CONTEXT) == {"note": None}


def test_nested_templates_resolve_all_the_way_down() -> None:
    template = {
        "ticket": {"subject": "$goal.subject", "missing": "$goal.nothing"},
        "list": ["$goal.n", {"deep": ["$workflow.type"]}],
    }

    assert resolve(template, CONTEXT) == {
        "ticket": {"subject": "Refund"},
        "list": [0, {"deep": ["support.ticket"]}],
    }


def test_a_missing_value_in_a_list_is_null() -> None:
    # A list keeps its positions, so a missing item becomes null rather than vanishing.
    assert resolve(["$goal.subject", "$goal.customer"], CONTEXT) == ["Refund", None]


def test_a_missing_top_level_reference_is_null() -> None:
    assert resolve("$goal.customer", CONTEXT) is None


def test_tuples_resolve_like_lists() -> None:
    assert resolve(("$goal.n", "lit"), CONTEXT) == [0, "lit"]


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("$$goal.subject", "$goal.subject"),
        ("$$", "$"),
        ("$$$x", "$$x"),
        ("costs $5", "costs $5"),
        ("plain", "plain"),
    ],
)
def test_a_doubled_dollar_is_a_literal(template: str, value: str) -> None:
    assert resolve(template, CONTEXT) == value


def test_an_escaped_value_in_a_mapping_is_kept() -> None:
    assert resolve({"price": "$$9.99"}, CONTEXT) == {"price": "$9.99"}


@pytest.mark.parametrize("literal", [3, 2.5, True, None, ""])
def test_literals_resolve_to_themselves(literal: Any) -> None:
    assert resolve(literal, CONTEXT) == literal
    assert resolve({"v": literal}, CONTEXT) == {"v": literal}


@pytest.mark.parametrize(
    "reference",
    [
        "$steps.knowledge.output.articles.2",  # past the end
        "$steps.knowledge.output.articles.-1",  # no negative indexes
        "$steps.knowledge.output.articles.first",  # lists are indexed by number only
        "$goal.subject.length",  # strings have no fields
        "$goal.n.0",  # numbers have no items
        "$nothing",
    ],
)
def test_a_path_that_finds_nothing_is_missing(reference: str) -> None:
    assert resolve(reference, CONTEXT) is None
    assert resolve({"v": reference}, CONTEXT) == {}


def test_lookup_distinguishes_missing_from_null() -> None:
    assert lookup("$steps.triage.output.note", CONTEXT) is None
    assert lookup("$steps.triage.output.absent", CONTEXT) is not None
    assert resolve("$steps.triage.output.absent", CONTEXT) is None


def test_resolve_leaves_the_template_unchanged() -> None:
    template = {"a": ["$goal.subject"], "b": {"c": "$goal.missing"}}

    resolve(template, CONTEXT)

    assert template == {"a": ["$goal.subject"], "b": {"c": "$goal.missing"}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("$goal", True), ("$", True), ("$$goal", False), ("goal", False), (3, False), (None, False)],
)
def test_is_reference(value: Any, expected: bool) -> None:
    assert is_reference(value) is expected


def test_references_finds_every_reference_in_templates_and_conditions() -> None:
    template = {"a": "$goal.x", "b": ["$steps.s.output", "lit", "$$no"], "c": {"d": "$workflow.id"}}
    condition = AllOf(
        (
            Compare("$steps.one.output", "exists", True),
            AnyOf((Not(Compare("$goal.y", "eq", 1)), Compare("$steps.two.confidence", "gt", 0))),
        )
    )

    assert sorted(references(template)) == ["$goal.x", "$steps.s.output", "$workflow.id"]
    assert sorted(references(condition)) == [
        "$goal.y",
        "$steps.one.output",
        "$steps.two.confidence",
    ]
    assert list(references(None)) == []


@pytest.mark.parametrize(
    ("reference", "step"),
    [
        ("$steps.triage.output.x", "triage"),
        ("$steps.triage", "triage"),
        ("$steps", None),
        ("$goal.steps", None),
        ("$workflow.id", None),
    ],
)
def test_referenced_step(reference: str, step: str | None) -> None:
    assert referenced_step(reference) == step


# --- evaluate -----------------------------------------------------------------------------


def _holds(ref: str, operator: Operator, value: Any) -> bool:
    return evaluate(Compare(ref, operator, value), CONTEXT)


@pytest.mark.parametrize(
    ("ref", "operator", "value", "expected"),
    [
        ("$steps.triage.output.category", "eq", "billing", True),
        ("$steps.triage.output.category", "eq", "shipping", False),
        ("$goal.missing", "eq", None, True),
        ("$steps.triage.output.category", "ne", "shipping", True),
        ("$steps.triage.output.category", "ne", "billing", False),
        ("$steps.triage.output.urgency", "in", ["high", "urgent"], True),
        ("$steps.triage.output.urgency", "in", ["low"], False),
        ("$goal.missing", "in", ["x"], False),
        ("$steps.triage.output.urgency", "not_in", ["low"], True),
        ("$steps.triage.output.urgency", "not_in", ["high"], False),
        ("$steps.triage.output.score", "gt", 6, True),
        ("$steps.triage.output.score", "gt", 7, False),
        ("$steps.triage.output.score", "gte", 7, True),
        ("$steps.triage.output.score", "gte", 7.5, False),
        ("$steps.triage.output.score", "lt", 8, True),
        ("$steps.triage.output.score", "lt", 7, False),
        ("$steps.triage.output.score", "lte", 7, True),
        ("$steps.triage.output.score", "lte", 6.9, False),
        ("$steps.triage.confidence", "gte", 0.9, True),
        ("$goal.n", "lt", 1, True),
    ],
)
def test_each_operator_compares(ref: str, operator: Operator, value: Any, expected: bool) -> None:
    assert _holds(ref, operator, value) is expected


@pytest.mark.parametrize("operator", ["gt", "gte", "lt", "lte"])
@pytest.mark.parametrize(
    "ref",
    [
        "$goal.missing",  # missing
        "$steps.triage.output.note",  # null
        "$goal.subject",  # a string
        "$goal.tags",  # a list
    ],
)
def test_ordering_against_null_or_a_non_number_is_false(ref: str, operator: Operator) -> None:
    assert _holds(ref, operator, 0) is False
    assert _holds(ref, operator, -1000) is False


@pytest.mark.parametrize("operator", ["gt", "gte", "lt", "lte"])
def test_booleans_are_not_ordered_as_numbers(operator: Operator) -> None:
    context = {"goal": {"flag": True}}

    assert evaluate(Compare("$goal.flag", operator, 1), context) is False


def test_eq_does_not_treat_a_boolean_as_a_number() -> None:
    # JSON true and 1 are different values; ordering already refuses to mix them.
    context = {"goal": {"count": 1, "zero": 0}}

    assert evaluate(Compare("$goal.count", "eq", True), context) is False
    assert evaluate(Compare("$goal.zero", "in", [False]), context) is False


@pytest.mark.parametrize(
    ("ref", "value", "expected"),
    [
        ("$steps.triage.output.category", True, True),
        ("$steps.triage.output.category", False, False),
        ("$goal.missing", True, False),
        ("$goal.missing", False, True),
        ("$steps.triage.output.note", True, False),  # null counts as absent
        ("$steps.triage.output.note", False, True),
        ("$goal.n", True, True),  # zero is present
        ("$steps.knowledge.output.articles.1", True, True),
        ("$steps.knowledge.output.articles.5", True, False),
    ],
)
def test_exists(ref: str, value: bool, expected: bool) -> None:
    assert _holds(ref, "exists", value) is expected


TRUE = Compare("$goal.n", "eq", 0)
FALSE = Compare("$goal.n", "eq", 1)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (AllOf((TRUE, TRUE)), True),
        (AllOf((TRUE, FALSE)), False),
        (AnyOf((FALSE, TRUE)), True),
        (AnyOf((FALSE, FALSE)), False),
        (Not(TRUE), False),
        (Not(FALSE), True),
        (AllOf((AnyOf((FALSE, TRUE)), Not(FALSE))), True),
        (Not(AllOf((TRUE, AnyOf((FALSE, Not(TRUE)))))), True),
    ],
)
def test_combinators(condition: Any, expected: bool) -> None:
    assert evaluate(condition, CONTEXT) is expected
