"""Plans the LLM planner answers with, and the checks a plan passes before it runs.
Pure: a goal type loaded from inline YAML, a catalogue built in memory."""

from __future__ import annotations

from textwrap import dedent
from typing import Any

import pytest

from orchestrator.planning.plans import Capability, Checked, check_plan, parse_answer
from orchestrator.playbooks.loader import digest_of, load_text
from orchestrator.playbooks.model import Playbook

# May use search and write only, in at most 3 steps; steps get a 45 s timeout and 1 retry.
RESTRICTED = """\
type: research
planner: llm
input_schema:
  type: object
  required: [topic]
  properties: {topic: {type: string}, depth: {type: integer}}
defaults:
  timeout: 45s
  retries: 1
planning:
  capabilities: [search, write]
  max_steps: 3
"""

# May use every capability of the catalogue, in up to 8 steps (the defaults).
OPEN = """\
type: open
planner: llm
"""

CATALOGUE = {
    "search": Capability(
        "search",
        "finds sources",
        {
            "type": "object",
            "required": ["query"],
            "properties": {"query": {"type": "string"}, "k": {"type": "integer"}},
            "additionalProperties": False,
        },
    ),
    "write": Capability(
        "write",
        "writes a summary",
        {
            "type": "object",
            "required": ["notes"],
            "properties": {"notes": {"type": "string"}, "topic": {"type": "string"}},
        },
    ),
    "translate": Capability("translate", "no input schema announced"),
}

GOAL_INPUT = {"topic": "refunds"}

# Two steps: write reads search's output, so it depends on search.
VALID = {
    "steps": [
        {
            "name": "a",
            "capability": "search",
            "input": {"query": "$goal.topic", "k": 3},
            "description": "find sources",
        },
        {
            "name": "b",
            "capability": "write",
            "depends_on": ["a"],
            "input": {"notes": "$steps.a.output.y", "topic": "$goal.topic"},
        },
    ],
    "output": {"summary": "$steps.b.output.text"},
}


def goal(text: str = RESTRICTED) -> Playbook:
    """A goal type from inline YAML, checked as a file would be."""
    return load_text(dedent(text), source="goal.yaml")


def check(
    plan: Any,
    *,
    text: str = RESTRICTED,
    goal_input: dict[str, Any] | None = None,
    catalogue: dict[str, Capability] | None = CATALOGUE,
) -> Checked:
    """Check ``plan`` for a goal of ``text`` against the catalogue."""
    return check_plan(
        goal(text),
        plan,
        goal_input=GOAL_INPUT if goal_input is None else goal_input,
        catalogue=catalogue,
    )


def steps(*specs: dict[str, Any]) -> dict[str, Any]:
    """A plan of these steps."""
    return {"steps": list(specs)}


def search(name: str = "a", **fields: Any) -> dict[str, Any]:
    """A search step with a valid input unless told otherwise."""
    return {"name": name, "capability": "search", "input": {"query": "q"}, **fields}


def refused(checked: Checked) -> tuple[str, ...]:
    """The reasons of a refused plan (failing the test if it passed)."""
    assert checked.playbook is None, "the plan should have been refused"
    assert checked.problems
    return checked.problems


# --- a plan that passes --------------------------------------------------------------------


def test_a_valid_plan_becomes_a_playbook_of_the_goal_type() -> None:
    checked = check(VALID)

    assert checked.problems == ()
    playbook = checked.playbook
    assert playbook is not None
    assert playbook.type == "research"
    assert playbook.planning is None  # the plan is the steps; nothing plans it again
    assert [(s.name, s.capability, s.depends_on) for s in playbook.steps] == [
        ("a", "search", ()),
        ("b", "write", ("a",)),
    ]
    assert playbook.step("a").input == {"query": "$goal.topic", "k": 3}
    assert playbook.step("a").description == "find sources"
    assert playbook.step("b").input == {"notes": "$steps.a.output.y", "topic": "$goal.topic"}
    assert playbook.output == {"summary": "$steps.b.output.text"}


def test_a_planned_playbook_carries_the_goal_types_input_schema_and_defaults() -> None:
    playbook = check(VALID).playbook
    assert playbook is not None
    goal_type = goal()

    assert playbook.document["input_schema"] == goal_type.document["input_schema"]
    assert playbook.document["defaults"] == {"timeout": "45s", "retries": 1}
    assert playbook.input_schema == goal_type.input_schema
    assert playbook.input_errors({}) == ['input: "topic" is a required property']
    # The defaults apply to the planned steps as to a playbook's.
    assert {(s.timeout_s, s.retries) for s in playbook.steps} == {(45.0, 1)}
    assert "planning" not in playbook.document
    assert "planner" not in playbook.document


def test_a_planned_playbook_is_identified_by_the_digest_of_its_document() -> None:
    playbook = check(VALID).playbook
    other = check(steps(search())).playbook
    assert playbook is not None
    assert other is not None

    assert len(playbook.digest) == 64
    assert playbook.digest == digest_of(playbook.document)
    assert playbook.digest != goal().digest
    assert playbook.digest != other.digest
    again = check(VALID).playbook
    assert again is not None
    assert again.digest == playbook.digest  # the same plan is the same version


def test_a_plan_of_exactly_max_steps_passes() -> None:
    checked = check(steps(search("a"), search("b"), search("c")))

    assert checked.problems == ()
    assert checked.playbook is not None
    assert len(checked.playbook.steps) == 3


# --- refused: capabilities -----------------------------------------------------------------


def test_an_unknown_capability_is_refused_listing_the_catalogue() -> None:
    problems = refused(check(steps({"name": "a", "capability": "nope"}), text=OPEN))

    assert problems == (
        "steps[0].capability: unknown capability 'nope'; the catalogue has search, "
        "translate, write",
    )


def test_an_empty_catalogue_says_it_has_none() -> None:
    problems = refused(check(steps(search()), text=OPEN, catalogue={}))

    assert problems == ("steps[0].capability: unknown capability 'search'; the catalogue has none",)


def test_a_capability_outside_planning_capabilities_is_refused() -> None:
    # translate is in the catalogue, but this goal type may not use it.
    plan = steps(search(), {"name": "t", "capability": "translate"})

    problems = refused(check(plan))

    assert problems == (
        "steps[1].capability: 'translate' is not one this goal type may use; use one of "
        "search, write",
    )


def test_without_planning_capabilities_any_catalogued_capability_may_be_used() -> None:
    checked = check(steps({"name": "t", "capability": "translate"}), text=OPEN)

    assert checked.problems == ()
    assert checked.playbook is not None


# --- refused: the graph --------------------------------------------------------------------


def test_a_cycle_is_refused() -> None:
    plan = steps(search("a", depends_on=["b"]), search("b", depends_on=["a"]))

    assert refused(check(plan)) == ("steps: steps depend on each other in a cycle: a -> b -> a",)


def test_depending_on_a_missing_step_is_refused() -> None:
    plan = steps(search("a"), search("b", depends_on=["a", "zz"]))

    assert refused(check(plan)) == ("steps[1].depends_on[1]: no step named 'zz'",)


def test_reading_a_step_not_depended_on_is_refused() -> None:
    plan = steps(
        search("a"),
        {"name": "b", "capability": "write", "input": {"notes": "$steps.a.output.y"}},
    )

    assert refused(check(plan)) == (
        "steps[1].input: $steps.a.output.y reads step 'a', which 'b' does not depend on; "
        "add 'a' to depends_on",
    )


def test_a_step_name_used_twice_is_refused() -> None:
    problems = refused(check(steps(search("a"), search("a"))))

    assert problems == ("steps[1].name: step name 'a' is used twice",)


# --- refused: the shape --------------------------------------------------------------------


def test_more_steps_than_max_steps_is_refused() -> None:
    plan = steps(*(search(f"s{i}") for i in range(4)))

    assert refused(check(plan)) == (
        "steps: 4 steps is more than this goal type allows (3); combine or drop steps",
    )


def test_a_step_key_a_plan_may_not_set_is_refused() -> None:
    plan = steps(search("a"), search("b", retries=9))

    assert refused(check(plan)) == (
        "steps[1]: 'retries' cannot be set by a plan; a step has only name, capability, "
        "depends_on, input, description",
    )


def test_an_unknown_top_level_key_is_refused() -> None:
    plan = {**steps(search()), "notes": "I thought hard"}

    assert refused(check(plan)) == (
        "'notes' is not part of a plan; a plan has only steps and output",
    )


@pytest.mark.parametrize("plan", [["a", "b"], "a plan", None, 3])
def test_a_plan_that_is_not_an_object_is_refused(plan: Any) -> None:
    assert refused(check(plan)) == ('the plan must be a JSON object {"steps": [...]}',)


@pytest.mark.parametrize("plan", [{"steps": []}, {}, {"steps": "search then write"}])
def test_a_plan_without_a_list_of_steps_is_refused(plan: Any) -> None:
    assert refused(check(plan)) == ("steps: the plan needs a list of at least one step",)


def test_a_step_that_is_not_an_object_is_refused() -> None:
    plan = {"steps": [search(), "write it up"]}

    assert refused(check(plan)) == ("steps[1]: a step is a JSON object",)


def test_every_shape_problem_is_reported_at_once() -> None:
    plan = {"steps": [search("a", when="always"), search("b", retries=1)], "extra": True}

    problems = refused(check(plan))

    assert len(problems) == 3
    assert any("'extra' is not part of a plan" in p for p in problems)
    assert any(p.startswith("steps[0]: 'when' cannot be set") for p in problems)
    assert any(p.startswith("steps[1]: 'retries' cannot be set") for p in problems)


# --- input schemas -------------------------------------------------------------------------


def test_a_literal_of_the_wrong_type_is_refused_naming_the_step_and_field() -> None:
    plan = steps({"name": "find", "capability": "search", "input": {"query": 5}})

    assert refused(check(plan)) == (
        'steps[0].input (find, capability search): query: 5 is not of type "string"',
    )


def test_a_missing_required_field_is_refused() -> None:
    plan = steps({"name": "find", "capability": "search", "input": {"k": 2}})

    assert refused(check(plan)) == (
        "steps[0].input (find, capability search): (the whole input): "
        '"query" is a required property',
    )


def test_an_input_breaking_additional_properties_is_refused() -> None:
    plan = steps(search(input={"query": "q", "limit": 2}))

    (problem,) = refused(check(plan))

    assert problem.startswith("steps[0].input (a, capability search): ")
    assert "limit" in problem


def test_a_field_read_from_another_step_is_not_checked_until_it_runs() -> None:
    # notes must be a string; what a's output holds is unknown until a ran.
    plan = steps(
        search("a"),
        {
            "name": "b",
            "capability": "write",
            "depends_on": ["a"],
            "input": {"notes": "$steps.a.output.y"},
        },
    )

    checked = check(plan)

    assert checked.problems == ()
    assert checked.playbook is not None


def test_a_literal_beside_a_field_read_from_another_step_is_still_checked() -> None:
    plan = steps(
        search("a"),
        {
            "name": "b",
            "capability": "write",
            "depends_on": ["a"],
            "input": {"notes": "$steps.a.output.y", "topic": ["not", "a", "string"]},
        },
    )

    (problem,) = refused(check(plan))

    assert problem.startswith("steps[1].input (b, capability write): topic: ")
    assert "is not of type" in problem


def test_a_goal_reference_is_checked_with_the_goal_inputs_value() -> None:
    plan = steps(search(input={"query": "$goal.topic"}))

    assert check(plan).playbook is not None
    assert refused(check(plan, goal_input={"topic": 7})) == (
        'steps[0].input (a, capability search): query: 7 is not of type "string"',
    )


def test_a_goal_reference_that_finds_nothing_leaves_its_key_out() -> None:
    # k is optional: left out, it is not a null that breaks "integer".
    optional = steps(search(input={"query": "q", "k": "$goal.depth"}))
    # query is required: left out, it is missing.
    required = steps(search(input={"query": "$goal.subject"}))

    assert check(optional).problems == ()
    assert refused(check(required)) == (
        'steps[0].input (a, capability search): (the whole input): "query" is a required property',
    )


def test_a_capability_without_an_input_schema_takes_any_input() -> None:
    plan = steps({"name": "t", "capability": "translate", "input": {"anything": [1, 2]}})

    assert check(plan, text=OPEN).problems == ()


# --- no catalogue: the state machine's re-check of an edited plan --------------------------


def test_without_a_catalogue_capabilities_and_inputs_are_not_checked() -> None:
    plan = steps({"name": "a", "capability": "nope", "input": {"query": 5}})

    checked = check(plan, text=OPEN, catalogue=None)

    assert checked.problems == ()
    assert checked.playbook is not None
    assert checked.playbook.step("a").capability == "nope"


def test_without_a_catalogue_a_cycle_is_still_refused() -> None:
    plan = steps(
        {"name": "a", "capability": "nope", "depends_on": ["b"]},
        {"name": "b", "capability": "nope", "depends_on": ["a"]},
    )

    assert refused(check(plan, text=OPEN, catalogue=None)) == (
        "steps: steps depend on each other in a cycle: a -> b -> a",
    )


def test_without_a_catalogue_the_goal_types_capabilities_still_bind() -> None:
    # planning.capabilities belongs to the goal type, not to the catalogue.
    plan = steps({"name": "a", "capability": "translate"})

    assert refused(check(plan, catalogue=None)) == (
        "steps[0].capability: 'translate' is not one this goal type may use; use one of "
        "search, write",
    )


# --- parse_answer --------------------------------------------------------------------------


def test_an_answer_of_plain_json_is_read() -> None:
    assert parse_answer('  {"steps": [{"name": "a"}]}\n') == ({"steps": [{"name": "a"}]}, None)


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"steps": [{"name": "a"}]}\n```',
        '```\n{"steps": [{"name": "a"}]}\n```',
        '\n  ```json {"steps": [{"name": "a"}]} ```  \n',
    ],
)
def test_an_answer_in_a_json_fence_is_read(text: str) -> None:
    assert parse_answer(text) == ({"steps": [{"name": "a"}]}, None)


def test_an_answer_that_is_not_json_is_explained() -> None:
    value, problem = parse_answer("Sure! Search first, then write.")

    assert value is None
    assert problem == (
        "the answer is not JSON (Expecting value at line 1, column 1); answer with the plan "
        "as one JSON object and nothing else"
    )


def test_broken_json_in_a_fence_is_explained_with_its_position() -> None:
    value, problem = parse_answer('```json\n{"steps": [\n  {"name": "a",}\n]}\n```')

    assert value is None
    assert problem is not None
    assert problem.startswith("the answer is not JSON (")
    assert "line 2" in problem
