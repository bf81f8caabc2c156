"""Step options: declared once in the schema and once in ``Step``, read generically from a
step merged with the playbook's ``defaults:``."""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from importlib import resources
from textwrap import dedent
from typing import Any

import pytest

from orchestrator.errors import PlaybookError, Problem
from orchestrator.playbooks.loader import load_text
from orchestrator.playbooks.model import (
    Backoff,
    Fallback,
    OnReject,
    Playbook,
    ReviewPolicy,
    Step,
    step_options,
)


def _schema() -> dict[str, Any]:
    text = resources.files("orchestrator.playbooks").joinpath("playbook.schema.json")
    return dict(json.loads(text.read_text()))


def _load(text: str) -> Playbook:
    return load_text(dedent(text), source="test.yaml")


def _problems(text: str) -> list[Problem]:
    with pytest.raises(PlaybookError) as caught:
        _load(text)
    return caught.value.problems


# --- one declaration each -----------------------------------------------------------------


def test_every_key_a_step_may_have_is_a_step_field_and_every_field_a_key() -> None:
    definitions = _schema()["$defs"]
    schema_keys = {*definitions["step_options"]["properties"], *definitions["step"]["properties"]}

    model_keys = {option.key for _, option in step_options()}

    assert schema_keys == model_keys


def test_a_step_takes_its_options_from_step_options_and_declares_none_again() -> None:
    definitions = _schema()["$defs"]
    step = definitions["step"]

    assert step["$ref"] == "#/$defs/step_options"
    assert step["unevaluatedProperties"] is False
    assert not set(step["properties"]) & set(definitions["step_options"]["properties"])


def test_every_step_option_says_what_it_means() -> None:
    definitions = _schema()["$defs"]
    options = {**definitions["step_options"]["properties"], **definitions["step"]["properties"]}

    def described(schema: dict[str, Any]) -> bool:
        reference = schema.get("$ref", "")
        target = definitions.get(reference.removeprefix("#/$defs/"), {})
        return "description" in schema or "description" in target

    assert [key for key, schema in options.items() if not described(schema)] == []


def test_a_field_without_a_default_is_a_key_the_schema_requires() -> None:
    required = set(_schema()["$defs"]["step"]["required"])
    by_name = {declared.name: declared for declared in fields(Step)}

    without_default = {
        option.key
        for name, option in step_options()
        if by_name[name].default is MISSING and by_name[name].default_factory is MISSING
    }

    assert without_default == required == {"name", "capability"}


# --- defaults: ----------------------------------------------------------------------------

EVERY_DEFAULT = """\
type: t
defaults:
  timeout: 5m
  retries: 4
  backoff: {initial: 2s, max: 1m}
  escalate_below: 0.4
  requires_approval: true
  review:
    group: editors
    priority: 2
    sla: 2h
    warn_before: 10m
    on_timeout: {action: reassign, group: leads}
  on_reject: skip
  on_failure: escalate
steps:
  - name: a
    capability: x
"""


def test_every_option_in_defaults_reaches_a_step_that_says_nothing() -> None:
    step = _load(EVERY_DEFAULT).step("a")

    assert step == Step(
        "a",
        "x",
        timeout_s=300.0,
        retries=4,
        backoff=Backoff(2.0, 60.0),
        escalate_below=0.4,
        requires_approval=True,
        review=ReviewPolicy("editors", 2, 7200.0, 600.0, "reassign", "leads"),
        on_reject=OnReject("skip"),
        on_failure="escalate",
    )


def test_a_step_replaces_a_default_except_review_and_backoff_which_merge_key_by_key() -> None:
    playbook = _load(
        EVERY_DEFAULT
        + """\
  - name: b
    capability: y
    depends_on: [a]
    timeout: 1s
    retries: 0
    backoff: {max: 5s}
    escalate_below: 0.9
    requires_approval: false
    review: {priority: 1, on_timeout: {action: wait}}
    on_reject: {goto: a}
    on_failure: fail
"""
    )

    step = playbook.step("b")
    assert (step.timeout_s, step.retries, step.escalate_below, step.requires_approval) == (
        1.0,
        0,
        0.9,
        False,
    )
    assert step.backoff == Backoff(2.0, 5.0)
    # on_timeout is one key of review: the step's replaces the default's whole.
    assert step.review == ReviewPolicy("editors", 1, 7200.0, 600.0, "wait", None)
    assert (step.on_reject, step.on_failure) == (OnReject("goto", "a"), "fail")


def test_without_review_or_on_reject_a_step_gets_the_models_defaults() -> None:
    step = _load("type: t\nsteps: [{name: a, capability: x, review: {}}]\n").step("a")

    assert step.review == ReviewPolicy()
    assert (step.review.group, step.review.priority, step.review.sla_s) == ("reviewers", 3, 86400)
    assert step.review.warning_s == 86400 / 5
    assert step.on_reject == OnReject("fail")


def test_a_fallback_takes_the_retries_the_step_ends_up_with() -> None:
    playbook = _load(
        """\
        type: t
        defaults: {retries: 1}
        steps:
          - name: a
            capability: x
            fallback: {capability: y}
          - name: b
            capability: x
            retries: 5
            fallback: {capability: y}
        """
    )

    assert playbook.step("a").fallback == Fallback("y", 1)
    assert playbook.step("b").fallback == Fallback("y", 5)
    assert _load("type: t\nsteps: [{name: a, capability: x, fallback: {capability: y}}]\n").step(
        "a"
    ).fallback == Fallback("y", 2)


def test_a_step_only_field_in_defaults_is_refused_like_any_unknown_key() -> None:
    (problem,) = _problems(
        """\
        type: t
        defaults:
          depends_on: [a]
        steps: [{name: a, capability: x}]
        """
    )

    assert problem == Problem(
        "defaults", "Additional properties are not allowed ('depends_on' was unexpected)", 3
    )


# --- what the author reads ----------------------------------------------------------------


def test_unknown_keys_of_a_step_are_named_as_not_allowed() -> None:
    (problem,) = _problems(
        """\
        type: t
        steps:
          - name: a
            capability: x
            retry: 2
            summery: hi
        """
    )

    assert problem == Problem(
        "steps[0]", "Additional properties are not allowed ('retry', 'summery' were unexpected)", 3
    )


@pytest.mark.parametrize(
    ("option", "field"),
    [
        ("retries: -1", "steps[0].retries"),
        ("backoff: {initial: 0}", "steps[0].backoff.initial"),
        ("review: {priority: 9}", "steps[0].review.priority"),
        ("on_reject: {goto: A}", "steps[0].on_reject"),
    ],
)
def test_a_bad_option_value_is_its_own_problem_only(option: str, field: str) -> None:
    # The option failed its check: it must not also be reported as an unexpected key.
    problems = _problems(f"type: t\nsteps:\n  - name: a\n    capability: x\n    {option}\n")

    assert [(p.field, p.line) for p in problems] == [(field, 5)]
    assert "unexpected" not in problems[0].message


def test_schema_problems_are_listed_in_the_order_of_the_file() -> None:
    # The schema checks a step's own fields before the options it takes by $ref.
    problems = _problems(
        """\
        type: t
        steps:
          - name: a
            capability: x
            timeout: soon
            when: {ref: $nowhere, eq: 1}
            retry: 2
          - name: B
            capability: y
        """
    )

    assert [(p.field, p.line) for p in problems] == [
        ("steps[0]", 3),
        ("steps[0].timeout", 5),
        ("steps[0].when", 6),
        ("steps[1].name", 8),
    ]
