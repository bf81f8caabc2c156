"""A step's ``summary``: the one line the inbox shows for its escalations. Checked when
the playbook loads, rendered (pure, no code run) when an escalation opens, and stored in
what the reviewer is shown, so the digest covers it."""

from __future__ import annotations

import json
from importlib import resources
from textwrap import dedent
from typing import Any

import pytest

from orchestrator.errors import PlaybookError
from orchestrator.playbooks import summary
from orchestrator.playbooks.loader import load_text
from orchestrator.workflow.escalation import canonical_digest
from tests.orchestrator.workflow.harness import Run, load_playbook

CONTENT: dict[str, Any] = {
    "output": {"category": "billing", "amount": 42.5, "tags": ["refund", "vip"], "ok": True},
    "task_input": {"customer": "Ann Lee", "order": {"id": "A-7"}},
    "goal_input": {"subject": "Where is my money?", "empty": "", "nothing": None},
}


@pytest.mark.parametrize(
    ("template", "line"),
    [
        ("{output.category} for {input.customer}", "billing for Ann Lee"),
        ("{output.amount} EUR, order {input.order.id}", "42.5 EUR, order A-7"),
        ("first tag {output.tags.0}, all {output.tags}", 'first tag refund, all ["refund", "vip"]'),
        ("{goal.subject} ok={output.ok}", "Where is my money? ok=true"),
        ("{{literal}} {output.category}", "{literal} billing"),
        # Whatever is missing, empty or null shows as a dash.
        ("{output.missing} / {output.tags.9} / {goal.empty} / {goal.nothing}", "— / — / — / —"),
        ("{input.customer.first}", "—"),  # a path into a string
        ("{goal}", '{"subject": "Where is my money?", "empty": "", "nothing": null}'),
    ],
)
def test_a_template_renders_fields_of_the_output_the_task_input_and_the_goal(
    template: str, line: str
) -> None:
    assert summary.render(template, CONTENT) == line


def test_the_line_is_one_line_and_clipped() -> None:
    content = {"output": {"text": "two\nlines\t and   spaces" + " x" * 300}}

    line = summary.render("{output.text}", content)

    assert line.startswith("two lines and spaces x x")
    assert "\n" not in line
    assert len(line) == summary.WIDTH
    assert line.endswith("…")


def test_a_placeholder_is_a_path_never_code() -> None:
    content = {"output": {"__class__": "a field named so"}}

    assert summary.render("{output.__class__}", content) == "a field named so"
    assert summary.render("{output.__class__.__name__}", content) == "—"
    # Unreadable placeholders (the schema refuses them at load) stay literal text.
    assert summary.render("{output[0]} {0} {", CONTENT) == "{output[0]} {0} {"


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{output.category} for {input.customer}", None),
        ("{{braces}} and {goal.subject}", None),
        ("{outptu.category}", "{outptu.category} is not a summary placeholder"),
        ("{output[0]}", "{output[0]} is not a summary placeholder"),
        ("{ output.x }", "{ output.x } is not a summary placeholder"),
        ("{output.category", "has a lone '{'"),
        ("done}", "has a lone '}'"),
    ],
)
def test_problem_says_what_is_wrong(template: str, problem: str | None) -> None:
    found = summary.problem(template)

    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_the_schema_s_pattern_is_the_module_s_grammar() -> None:
    text = resources.files("orchestrator.playbooks").joinpath("playbook.schema.json")
    schema = json.loads(text.read_text())

    assert schema["$defs"]["step_options"]["properties"]["summary"]["pattern"] == summary.PATTERN


SUMMARIZED = """\
type: t
defaults:
  summary: "{output.category} for {input.customer}"
steps:
  - name: triage
    capability: triage
    input: {customer: $goal.customer}
    requires_approval: true
  - name: reply
    capability: reply
    depends_on: [triage]
    summary: "Reply: {output.text}"
  - name: plain
    capability: plain
    summary: "no placeholder at all"
"""


def test_a_step_takes_its_summary_or_the_default_one() -> None:
    playbook = load_text(SUMMARIZED, source="t.yaml")

    assert playbook.step("triage").summary == "{output.category} for {input.customer}"
    assert playbook.step("reply").summary == "Reply: {output.text}"
    assert playbook.step("plain").summary == "no placeholder at all"
    assert load_text("type: t\nsteps: [{name: a, capability: x}]\n").step("a").summary is None


@pytest.mark.parametrize(
    "template",
    ["{outptu.category}", "{output.category", "{output[0]}", "{ output.x }", "done}", ""],
)
def test_a_summary_that_is_not_a_template_is_refused_with_its_line(template: str) -> None:
    text = dedent(
        f"""\
        type: t
        steps:
          - name: a
            capability: x
          - name: b
            capability: y
            summary: {json.dumps(template)}
        """
    )

    with pytest.raises(PlaybookError) as caught:
        load_text(text, source="t.yaml")

    (problem,) = caught.value.problems
    assert problem.field == "steps[1].summary"
    assert problem.line == 7
    assert "t.yaml" in str(caught.value)


def test_an_escalation_opens_with_its_summary_line_under_its_digest() -> None:
    run = Run(load_playbook(SUMMARIZED), {"customer": "Ann"})
    run.start()
    task = run.task("triage")
    run.succeed("triage", {"category": "billing"})

    (escalation,) = run.state.escalations.values()
    assert escalation.task_id == task.id
    assert escalation.content["summary"] == "billing for Ann"
    assert escalation.digest == canonical_digest(escalation.content)


def test_without_a_summary_the_content_has_none() -> None:
    plain = Run(
        load_playbook("type: t\nsteps: [{name: a, capability: x, requires_approval: true}]\n"),
        {},
    )
    plain.start()
    plain.succeed("a", {"x": 1})

    (escalation,) = plain.state.escalations.values()
    assert "summary" not in escalation.content
