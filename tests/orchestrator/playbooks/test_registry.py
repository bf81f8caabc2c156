"""The playbook registry: one playbook per goal type, and goal checks against it."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InvalidGoalInput, PlaybookError, UnknownGoalType
from orchestrator.playbooks.loader import load_text
from orchestrator.playbooks.model import Playbook
from orchestrator.playbooks.registry import PlaybookRegistry

SUPPORT = Path(__file__).resolve().parents[2] / "support" / "playbooks"

GREETING = """\
type: greeting
input_schema:
  type: object
  required: [name]
  properties:
    name: {type: string, minLength: 1}
    times: {type: integer, minimum: 1}
steps:
  - name: hello
    capability: greet
  - name: wave
    capability: wave.hands
"""


def _playbook(text: str = GREETING, source: str = "greeting.yaml") -> Playbook:
    return load_text(text, source=source)


def test_the_default_registry_holds_the_builtin_playbooks() -> None:
    registry = PlaybookRegistry.load()

    assert "support.ticket" in registry.types()
    assert {"triage", "knowledge", "reply"} <= registry.capabilities()


def test_extra_directories_add_their_playbooks() -> None:
    registry = PlaybookRegistry.load([SUPPORT])

    assert {"support.ticket", "test.echo"} <= set(registry.types())
    assert registry.require("test.echo").step("echo").capability == "echo"


def test_a_goal_type_planned_twice_names_both_files(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("type: support.ticket\nsteps: [{name: a, capability: x}]\n")

    with pytest.raises(PlaybookError) as caught:
        PlaybookRegistry.load([tmp_path])

    message = str(caught.value)
    assert str(tmp_path / "mine.yaml") in message
    assert "support.ticket.yaml" in message
    assert "'support.ticket' is already planned by" in message
    assert caught.value.problems[0].field == "type"


def test_get_and_require() -> None:
    playbook = _playbook()
    registry = PlaybookRegistry([playbook])

    assert registry.get("greeting") is playbook
    assert registry.require("greeting") is playbook
    assert registry.get("farewell") is None


def test_an_unknown_goal_type_lists_the_known_ones() -> None:
    registry = PlaybookRegistry([_playbook(), _playbook(GREETING.replace("greeting", "alpha"))])

    with pytest.raises(UnknownGoalType) as caught:
        registry.require("farewell")

    assert caught.value.goal_type == "farewell"
    assert str(caught.value) == (
        "no playbook for goal type 'farewell'; known types: alpha, greeting"
    )


def test_an_empty_registry_says_it_knows_no_types() -> None:
    with pytest.raises(UnknownGoalType, match="known types: none"):
        PlaybookRegistry([]).check_goal("greeting", {})


def test_check_goal_returns_the_playbook_for_valid_input() -> None:
    playbook = _playbook()

    assert PlaybookRegistry([playbook]).check_goal("greeting", {"name": "Ada"}) is playbook


def test_check_goal_lists_every_input_problem() -> None:
    registry = PlaybookRegistry([_playbook()])

    with pytest.raises(InvalidGoalInput) as caught:
        registry.check_goal("greeting", {"times": 0})

    assert caught.value.goal_type == "greeting"
    assert sorted(caught.value.problems) == [
        ("input", '"name" is a required property'),
        ("times", "0 is less than the minimum of 1"),
    ]
    assert str(caught.value).startswith("input of a greeting goal is invalid: ")


def test_check_goal_rejects_input_that_is_not_an_object() -> None:
    with pytest.raises(InvalidGoalInput, match="input: "):
        PlaybookRegistry([_playbook()]).check_goal("greeting", ["Ada"])


def test_check_goal_accepts_anything_without_an_input_schema() -> None:
    playbook = _playbook("type: free\nsteps: [{name: a, capability: x}]\n")

    assert PlaybookRegistry([playbook]).check_goal("free", {"whatever": [1]}) is playbook


def test_capabilities_of_every_playbook() -> None:
    other = _playbook(
        "type: other\nsteps: [{name: a, capability: greet}, {name: b, capability: z}]\n"
    )

    registry = PlaybookRegistry([_playbook(), other])

    assert registry.capabilities() == frozenset({"greet", "wave.hands", "z"})


def test_types_are_sorted_and_iteration_yields_playbooks() -> None:
    first = _playbook(GREETING.replace("greeting", "zeta"))
    second = _playbook(GREETING.replace("greeting", "alpha"))

    registry = PlaybookRegistry([first, second])

    assert registry.types() == ["alpha", "zeta"]
    assert {p.type for p in registry} == {"alpha", "zeta"}
