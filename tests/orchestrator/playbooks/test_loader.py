"""Loading playbooks: schema and graph checks, with every problem located by field and line."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from orchestrator.errors import PlaybookError, Problem
from orchestrator.playbooks.loader import (
    builtin_dir,
    load_dirs,
    load_file,
    load_text,
    parse_duration,
)
from orchestrator.playbooks.model import AllOf, AnyOf, Backoff, Compare, Not, Playbook

SUPPORT = Path(__file__).resolve().parents[2] / "support" / "playbooks"


def _load(text: str) -> Playbook:
    return load_text(dedent(text), source="test.yaml")


def _problems(text: str) -> list[Problem]:
    with pytest.raises(PlaybookError) as caught:
        _load(text)
    assert caught.value.source == "test.yaml"
    return caught.value.problems


def _only_problem(text: str) -> Problem:
    problems = _problems(text)
    assert len(problems) == 1, problems
    return problems[0]


# --- the shipped playbooks ----------------------------------------------------------------


def test_the_builtin_support_ticket_playbook_loads() -> None:
    playbook = load_file(builtin_dir() / "support.ticket.yaml")

    assert playbook.type == "support.ticket"
    assert [s.name for s in playbook.steps] == ["triage", "knowledge", "reply"]
    assert playbook.step("reply").depends_on == ("triage", "knowledge")
    assert playbook.capabilities == frozenset({"triage", "knowledge", "reply"})
    assert playbook.source.endswith("support.ticket.yaml")


def test_the_builtin_defaults_reach_every_step() -> None:
    playbook = load_file(builtin_dir() / "support.ticket.yaml")

    for step in playbook.steps:
        assert step.timeout_s == 30.0
        assert step.retries == 2
        assert step.max_attempts == 3
        assert step.backoff == Backoff(initial_s=1.0, max_s=30.0)


def test_the_builtin_input_schema_checks_goals() -> None:
    playbook = load_file(builtin_dir() / "support.ticket.yaml")

    assert playbook.input_errors({"subject": "s", "body": "b"}) == []
    errors = playbook.input_errors({"subject": ""})
    assert any("body" in e for e in errors)
    assert any(e.startswith("subject:") for e in errors)


def test_load_dirs_reads_every_yaml_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text("type: bee\nsteps: [{name: s, capability: c}]\n")
    (tmp_path / "a.yaml").write_text("type: ay\nsteps: [{name: s, capability: c}]\n")
    (tmp_path / "notes.txt").write_text("not a playbook")

    playbooks = load_dirs([tmp_path, SUPPORT])

    assert [p.type for p in playbooks] == ["ay", "bee", "test.echo", "test.echo.short"]
    assert playbooks[0].source == str(tmp_path / "a.yaml")


def test_load_dirs_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match="is not a directory"):
        load_dirs([tmp_path / "nowhere"])


def test_an_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("type: t\nsteps: []\n")

    with pytest.raises(PlaybookError) as caught:
        load_file(path)

    assert caught.value.source == str(path)
    assert str(caught.value).startswith(f"invalid playbook {path}:")
    assert f"{path}: steps (line 2)" in str(caught.value)


# --- schema problems ----------------------------------------------------------------------


def test_a_bad_capability_name_is_located() -> None:
    problem = _only_problem(
        """\
        type: t
        steps:
          - name: a
            capability: Bad_Capability
        """
    )

    assert problem.field == "steps[0].capability"
    assert problem.line == 4
    assert "Bad_Capability" in problem.message


def test_a_misspelt_field_is_located_at_its_step() -> None:
    problem = _only_problem(
        """\
        type: t
        steps:
          - name: a
            capability: x
          - name: b
            capability: y
            depend_on: [a]
        """
    )

    assert problem.field == "steps[1]"
    assert problem.line == 5
    assert "'depend_on' was unexpected" in problem.message


def test_an_unknown_top_level_field_is_refused() -> None:
    problems = _problems(
        """\
        type: t
        step:
          - name: a
            capability: x
        """
    )

    messages = [p.message for p in problems]
    assert "Additional properties are not allowed ('step' was unexpected)" in messages
    assert '"steps" is a required property' in messages
    assert {(p.field, p.line) for p in problems} == {("(top level)", 1)}


def test_every_schema_problem_is_reported_at_once() -> None:
    problems = _problems(
        """\
        type: T
        steps:
          - name: a
            capability: x
            retries: -1
        """
    )

    assert {p.field for p in problems} == {"type", "steps[0].retries"}
    assert {p.line for p in problems} == {1, 5}


def test_a_playbook_needs_at_least_one_step() -> None:
    problem = _only_problem("type: t\nsteps: []\n")

    assert (problem.field, problem.line) == ("steps", 2)


@pytest.mark.parametrize("timeout", ["0", "-5", "5 minutes", "5w", "'1.5'"])
def test_a_bad_duration_is_refused(timeout: str) -> None:
    problem = _only_problem(
        f"""\
        type: t
        steps:
          - name: a
            capability: x
            timeout: {timeout}
        """
    )

    assert (problem.field, problem.line) == ("steps[0].timeout", 5)


def test_a_zero_duration_string_is_refused_like_the_number_zero() -> None:
    # `timeout: 0` is refused (exclusiveMinimum 0) but `timeout: 0s` is accepted and makes
    # every lease expire the moment its task is dispatched.
    problem = _only_problem(
        """\
        type: t
        steps:
          - name: a
            capability: x
            timeout: 0s
        """
    )

    assert problem.field == "steps[0].timeout"


def test_a_condition_with_two_operators_is_refused() -> None:
    problem = _only_problem(
        """\
        type: t
        steps:
          - name: a
            capability: x
            when: {ref: $goal.n, gt: 1, lt: 3}
        """
    )

    assert (problem.field, problem.line) == ("steps[0].when", 5)


def test_a_condition_may_only_read_the_goal_or_steps() -> None:
    problem = _only_problem(
        """\
        type: t
        steps:
          - name: a
            capability: x
            when: {ref: $workflow.id, eq: x}
        """
    )

    assert problem.field == "steps[0].when"


# --- graph problems -----------------------------------------------------------------------


def test_duplicate_step_names_are_located_at_the_second() -> None:
    problem = _only_problem(
        """\
        type: t
        steps:
          - name: a
            capability: x
          - name: a
            capability: y
        """
    )

    assert (problem.field, problem.line) == ("steps[1].name", 5)
    assert "'a' is used twice" in problem.message


def test_an_unknown_dependency_is_located() -> None:
    problem = _only_problem(
        """\
        type: t
        steps:
          - name: a
            capability: x
          - name: b
            capability: x
            depends_on: [a, nope]
        """
    )

    assert (problem.field, problem.line) == ("steps[1].depends_on[1]", 7)
    assert "no step named 'nope'" in problem.message


def test_a_step_cannot_depend_on_itself() -> None:
    problem = _only_problem(
        """\
        type: t
        steps:
          - name: a
            capability: x
            depends_on:
              - a
        """
    )

    assert (problem.field, problem.line) == ("steps[0].depends_on[0]", 6)
    assert "cannot depend on itself" in problem.message


def test_a_cycle_is_refused_and_shown() -> None:
    problem = _only_problem(
        """\
        type: t
        steps:
          - name: a
            capability: x
            depends_on: [c]
          - name: b
            capability: x
            depends_on: [a]
          - name: c
            capability: x
            depends_on: [b]
        """
    )

    assert (problem.field, problem.line) == ("steps", 3)
    assert "cycle: a -> c -> b -> a" in problem.message


def test_a_cycle_beside_a_valid_root_is_found() -> None:
    problem = _only_problem(
        """\
        type: t
        steps:
          - name: root
            capability: x
          - name: p
            capability: x
            depends_on: [root, q]
          - name: q
            capability: x
            depends_on: [p]
        """
    )

    assert "p -> q -> p" in problem.message


def test_reading_a_step_not_depended_on_says_to_add_it() -> None:
    problem = _only_problem(
        """\
        type: t
        steps:
          - name: a
            capability: x
          - name: b
            capability: x
            input:
              v: $steps.a.output.v
        """
    )

    assert (problem.field, problem.line) == ("steps[1].input", 8)
    assert "add 'a' to depends_on" in problem.message


def test_a_condition_reading_a_step_not_depended_on_is_refused() -> None:
    problem = _only_problem(
        """\
        type: t
        steps:
          - name: a
            capability: x
          - name: b
            capability: x
            when:
              not: {ref: $steps.a.output.skip, eq: true}
        """
    )

    assert problem.field == "steps[1].when"
    assert "add 'a' to depends_on" in problem.message


def test_reading_a_transitive_dependency_is_allowed() -> None:
    playbook = _load(
        """\
        type: t
        steps:
          - name: a
            capability: x
          - name: b
            capability: x
            depends_on: [a]
          - name: c
            capability: x
            depends_on: [b]
            input: {first: $steps.a.output, second: [$steps.b.output]}
        """
    )

    assert playbook.step("c").input == {"first": "$steps.a.output", "second": ["$steps.b.output"]}


def test_reading_an_unknown_step_is_refused() -> None:
    problem = _only_problem(
        """\
        type: t
        steps:
          - name: a
            capability: x
            input: {v: $steps.ghost.output}
        """
    )

    assert problem.field == "steps[0].input"
    assert "unknown step 'ghost'" in problem.message


def test_output_reading_an_unknown_step_is_located() -> None:
    problem = _only_problem(
        """\
        type: t
        steps:
          - name: a
            capability: x
        output:
          result: $steps.a.output
          other: $steps.zzz.output
        """
    )

    assert (problem.field, problem.line) == ("output", 6)
    assert "unknown step 'zzz'" in problem.message


def test_an_invalid_input_schema_is_located() -> None:
    problem = _only_problem(
        """\
        type: t
        input_schema:
          type: 12
        steps:
          - name: a
            capability: x
        """
    )

    assert (problem.field, problem.line) == ("input_schema", 3)
    assert problem.message.startswith("not a valid JSON Schema")


def test_invalid_yaml_is_located() -> None:
    problem = _only_problem(
        """\
        type: t
        steps:
          - name: a
            capability: x: y
        """
    )

    assert problem.field == "(file)"
    assert problem.line == 4
    assert "not valid YAML" in problem.message


@pytest.mark.parametrize("text", ["", "just words\n", "- type: t\n", "42\n"])
def test_a_document_that_is_not_a_mapping_is_refused(text: str) -> None:
    problem = _only_problem(text)

    assert problem.field == "(file)"
    assert "mapping" in problem.message


def test_problem_text_shows_field_and_line() -> None:
    assert str(Problem("steps[0].name", "bad", 3)) == "steps[0].name (line 3): bad"
    assert str(Problem("(file)", "bad")) == "(file): bad"


# --- what a valid playbook becomes --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("1.5s", 1.5),
        ("5m", 300.0),
        ("1h", 3600.0),
        (12, 12.0),
        (0.25, 0.25),
    ],
)
def test_durations_are_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["30", "5 m", "1w", "m5", "-1s", ""])
def test_a_malformed_duration_names_itself(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_defaults_apply_when_nothing_is_said() -> None:
    playbook = _load(
        """\
        type: t
        steps:
          - name: a
            capability: x
        """
    )

    step = playbook.step("a")
    # The defaults docs/playbooks.md gives: 60 s, 2 retries, the orchestrator's backoff.
    assert (step.timeout_s, step.retries, step.backoff) == (60.0, 2, None)
    assert (step.depends_on, step.input, step.when, step.description) == ((), {}, None, "")
    assert (playbook.version, playbook.description, playbook.output) == (1, "", None)
    assert playbook.input_schema is None
    assert playbook.input_errors({"anything": True}) == []


def test_a_step_overrides_the_playbook_defaults() -> None:
    playbook = _load(
        """\
        type: t
        defaults:
          timeout: 5m
          retries: 4
          backoff: {initial: 2s, max: 1m}
        steps:
          - name: a
            capability: x
          - name: b
            capability: x
            timeout: 500ms
            retries: 0
            backoff: {initial: 100ms, max: 1s}
        """
    )

    a, b = playbook.steps
    assert (a.timeout_s, a.retries, a.max_attempts, a.backoff) == (300.0, 4, 5, Backoff(2.0, 60.0))
    assert (b.timeout_s, b.retries, b.max_attempts, b.backoff) == (0.5, 0, 1, Backoff(0.1, 1.0))


def test_a_backoff_field_left_out_is_left_to_the_orchestrators_setting() -> None:
    playbook = _load(
        """\
        type: t
        steps:
          - name: a
            capability: x
            backoff: {initial: 3s}
        """
    )

    assert playbook.step("a").backoff == Backoff(3.0, None)


def test_conditions_are_parsed_into_the_model() -> None:
    playbook = _load(
        """\
        type: t
        steps:
          - name: triage
            capability: x
          - name: reply
            capability: y
            depends_on: [triage]
            when:
              all:
                - {ref: $steps.triage.output.urgency, in: [high, urgent]}
                - any:
                    - {ref: $goal.vip, eq: true}
                    - {ref: $steps.triage.confidence, gte: 0.8}
                - not: {ref: $goal.muted, exists: true}
        """
    )

    assert playbook.step("reply").when == AllOf(
        (
            Compare("$steps.triage.output.urgency", "in", ["high", "urgent"]),
            AnyOf(
                (
                    Compare("$goal.vip", "eq", True),
                    Compare("$steps.triage.confidence", "gte", 0.8),
                )
            ),
            Not(Compare("$goal.muted", "exists", True)),
        )
    )


@pytest.mark.parametrize(
    ("operator", "value", "parsed"),
    [
        ("eq", "billing", "billing"),
        ("ne", "null", None),
        ("in", "[a, b]", ["a", "b"]),
        ("not_in", "[1, 2]", [1, 2]),
        ("gt", "1", 1),
        ("gte", "0.5", 0.5),
        ("lt", "10", 10),
        ("lte", "-1", -1),
        ("exists", "false", False),
    ],
)
def test_each_comparison_operator_is_parsed(operator: str, value: str, parsed: object) -> None:
    playbook = _load(
        f"""\
        type: t
        steps:
          - name: a
            capability: x
            when: {{ref: $goal.v, {operator}: {value}}}
        """
    )

    assert playbook.step("a").when == Compare("$goal.v", operator, parsed)  # type: ignore[arg-type]


def test_playbook_fields_are_kept() -> None:
    playbook = _load(
        """\
        type: billing.refund
        version: 3
        description: Refund a charge.
        input_schema: {type: object, required: [charge]}
        steps:
          - name: a
            capability: refunds.v2
            description: Does it.
            input: {charge: $goal.charge, note: $$literal}
        output: {refund: $steps.a.output}
        """
    )

    assert (playbook.type, playbook.version, playbook.description) == (
        "billing.refund",
        3,
        "Refund a charge.",
    )
    assert playbook.output == {"refund": "$steps.a.output"}
    assert playbook.step("a").description == "Does it."
    assert playbook.step("a").input == {"charge": "$goal.charge", "note": "$$literal"}
    assert playbook.input_errors({}) == ['input: "charge" is a required property']


def test_step_lookup_of_an_unknown_name_is_a_key_error() -> None:
    playbook = _load("type: t\nsteps: [{name: a, capability: x}]\n")

    with pytest.raises(KeyError):
        playbook.step("b")
