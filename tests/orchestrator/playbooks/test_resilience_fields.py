"""The resilience fields of a step: ``fallback`` and ``on_failure``, as loaded and checked."""

from __future__ import annotations

from textwrap import dedent

import pytest

from orchestrator.errors import PlaybookError, Problem
from orchestrator.playbooks.loader import load_text
from orchestrator.playbooks.model import Fallback, Playbook
from orchestrator.playbooks.registry import PlaybookRegistry


def _load(text: str) -> Playbook:
    return load_text(dedent(text), source="test.yaml")


def _problems(text: str) -> list[Problem]:
    with pytest.raises(PlaybookError) as caught:
        _load(text)
    return caught.value.problems


def test_a_fallback_names_another_capability_and_gets_the_steps_retries_by_default() -> None:
    playbook = _load(
        """\
        type: t
        defaults: {retries: 4}
        steps:
          - name: fetch
            capability: echo
            fallback: {capability: echo-backup}
          - name: other
            capability: echo
            retries: 1
            fallback: {capability: echo-backup, retries: 0}
        """
    )

    assert playbook.step("fetch").fallback == Fallback("echo-backup", 4)
    assert playbook.step("other").fallback == Fallback("echo-backup", 0)
    assert playbook.step("other").fallback is not None
    assert playbook.step("other").fallback.max_attempts == 1


def test_fallback_capabilities_are_capabilities_of_the_playbook_so_their_topics_exist() -> None:
    playbook = _load(
        """\
        type: t
        steps:
          - name: fetch
            capability: echo
            fallback: {capability: echo-backup}
        """
    )

    assert playbook.capabilities == frozenset({"echo", "echo-backup"})
    assert "echo-backup" in PlaybookRegistry([playbook]).capabilities()


def test_without_the_new_fields_a_step_fails_as_before() -> None:
    step = _load("type: t\nsteps: [{name: s, capability: echo}]\n").steps[0]

    assert (step.fallback, step.on_failure) == (None, "fail")


def test_on_failure_comes_from_the_step_or_the_defaults() -> None:
    playbook = _load(
        """\
        type: t
        defaults: {on_failure: escalate}
        steps:
          - name: a
            capability: echo
          - name: b
            capability: echo
            on_failure: fail
        """
    )

    assert [s.on_failure for s in playbook.steps] == ["escalate", "fail"]


def test_a_fallback_written_as_a_plain_name_says_how_to_write_it() -> None:
    (problem,) = _problems(
        """\
        type: t
        steps:
          - name: fetch
            capability: echo
            fallback: echo-backup
        """
    )

    assert problem == Problem(
        "steps[0].fallback",
        '"echo-backup" is not a fallback; write it as a mapping: fallback: '
        "{capability: NAME} (optionally with retries: N)",
        5,
    )


def test_a_fallback_to_the_steps_own_capability_is_refused() -> None:
    (problem,) = _problems(
        """\
        type: t
        steps:
          - name: fetch
            capability: echo
            fallback:
              capability: echo
        """
    )

    assert problem == Problem(
        "steps[0].fallback.capability",
        "'echo' is the step's own capability; a fallback must be another capability",
        6,
    )


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("fallback: {retries: 1}", '"capability" is a required property'),
        ("fallback: {capability: Echo}", '"Echo" does not match'),
        ("fallback: {capability: b, retry: 1}", "Additional properties are not allowed"),
        ("on_failure: retry", '"retry" is not one of "fail" or "escalate"'),
    ],
)
def test_malformed_fields_are_reported_with_the_schemas_message(field: str, message: str) -> None:
    problems = _problems(f"type: t\nsteps:\n  - name: s\n    capability: echo\n    {field}\n")

    assert len(problems) == 1, problems
    assert problems[0].line == 5
    assert message in problems[0].message


def test_a_fallback_is_per_step_not_a_default() -> None:
    (problem,) = _problems(
        "type: t\ndefaults: {fallback: {capability: b}}\nsteps: [{name: s, capability: a}]\n"
    )

    assert problem.field == "defaults"
    assert "'fallback' was unexpected" in problem.message
