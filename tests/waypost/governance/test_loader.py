"""Policy files: schema-checked, errors by file, field and line; versioned by digest."""

from __future__ import annotations

from pathlib import Path

import jsonschema_rs
import pytest

from waypost.governance import PolicyError, load_dirs, load_file, load_text
from waypost.governance.loader import parse_duration, policy_files, schema
from waypost.governance.model import ActionRule, AppliesTo, BudgetLimit, RateLimit

FULL = """\
name: support-reply
version: 3
description: What the reply agent may do.
applies_to:
  agents: [reply]
  capabilities: [support]
actions:
  allow: [search_kb, send_email, refund]
  deny:
    - delete_customer
    - {action: wire_money, reason: payments go through finance}
require_approval:
  - {action: refund, reason: refunds need a second pair of eyes}
rate_limits:
  - {action: send_email, limit: 10, per: 1m}
  - {action: "*", limit: 500, per: 1h}
budgets:
  per_day: {tokens: 200000, cost_usd: 5.00}
  per_workflow: {tokens: 20000}
  warn_at: 0.9
scopes:
  send_email: [crm.contacts]
  "*": [kb]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_text(text, source="p.yaml")
    assert caught.value.source == "p.yaml"
    return [str(problem) for problem in caught.value.problems]


def test_every_field_is_read() -> None:
    policy = load_text(FULL, source="policies/reply.yaml")

    assert (policy.name, policy.version, policy.source) == (
        "support-reply",
        3,
        "policies/reply.yaml",
    )
    assert policy.description == "What the reply agent may do."
    assert policy.applies_to == AppliesTo(frozenset({"reply"}), frozenset({"support"}))
    assert policy.allow == frozenset({"search_kb", "send_email", "refund"})
    assert policy.deny == (
        ActionRule("delete_customer", "actions.deny[0]"),
        ActionRule("wire_money", "actions.deny[1]", "payments go through finance"),
    )
    assert policy.approvals == (
        ActionRule("refund", "require_approval[0]", "refunds need a second pair of eyes"),
    )
    assert policy.rate_limits == (
        RateLimit("send_email", 10, 60.0, "1m", "rate_limits[0]"),
        RateLimit("*", 500, 3600.0, "1h", "rate_limits[1]"),
    )
    assert policy.budgets == (
        BudgetLimit("day", "tokens", 200000, "budgets.per_day.tokens"),
        BudgetLimit("day", "cost_usd", 5.0, "budgets.per_day.cost_usd"),
        BudgetLimit("workflow", "tokens", 20000, "budgets.per_workflow.tokens"),
    )
    assert policy.warn_at == 0.9
    assert policy.scopes == {"send_email": frozenset({"crm.contacts"}), "*": frozenset({"kb"})}
    assert len(policy.digest) == 64


def test_rules_know_their_lines() -> None:
    policy = load_text(FULL, source="reply.yaml")

    assert policy.ref("actions.deny[1]").line == 11
    assert policy.ref("rate_limits[1]").line == 16
    assert policy.ref("budgets.per_workflow.tokens").line == 19
    assert policy.ref("scopes.*").line == 23
    assert str(policy.ref("actions.allow")) == (
        "policy 'support-reply' v3 actions.allow (reply.yaml:8)"
    )


def test_the_smallest_policy_and_the_defaults() -> None:
    policy = load_text('version: 1\napplies_to: "*"\n', default_name="base")

    assert policy.name == "base"
    assert policy.applies_to.everyone
    assert policy.allow is None
    assert policy.scopes is None
    assert policy.warn_at == 0.8
    assert (policy.deny, policy.approvals, policy.rate_limits, policy.budgets) == ((), (), (), ())


def test_the_digest_ignores_comments_and_layout_but_not_content() -> None:
    compact = 'version: 1\napplies_to: "*"\nactions: {deny: [a]}\n'
    spread = '# a comment\nversion: 1\napplies_to: "*"\nactions:\n  deny:\n    - a\n'
    changed = 'version: 1\napplies_to: "*"\nactions: {deny: [b]}\n'

    assert load_text(compact).digest == load_text(spread).digest
    assert load_text(compact).digest != load_text(changed).digest


def test_errors_name_the_file_the_field_and_the_line() -> None:
    text = """\
version: 0
applies_to: {agents: [reply]}
actions:
  deny:
    - Delete Customer
rate_limits:
  - {action: send_email, limit: -1, per: 1m}
surprise: true
"""
    assert problems(text) == [
        "version (line 1): 0 is less than the minimum of 1",
        'actions.deny[0] (line 5): "Delete Customer" is not an action rule: write an action '
        "name (lower-case letters, digits, '.', '_', '-', ':' or '/', starting with a letter "
        '(a tool call is mcp:SERVER/TOOL)), "*", or {action: NAME, reason: TEXT}',
        "rate_limits[0].limit (line 7): -1 is less than the minimum of 0",
        "(top level) (line 8): Additional properties are not allowed ('surprise' was unexpected)",
    ]


def test_the_message_of_an_invalid_file_lists_every_problem_with_its_file() -> None:
    with pytest.raises(PolicyError) as caught:
        load_text("version: 1\n", source="policies/x.yaml")

    assert str(caught.value) == (
        "invalid policy policies/x.yaml:\n"
        '  policies/x.yaml: (top level) (line 1): "applies_to" is a required property'
    )


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        (
            "applies_to: {agent: [reply]}",
            'applies_to (line 2): applies_to is "*" (every agent) or a mapping with agents '
            "and/or capabilities, each a list of names",
        ),
        (
            'applies_to: "*"\nrate_limits: [{action: a, limit: 1, per: 1 minute}]',
            'rate_limits[0].per (line 3): "1 minute" is not a duration: write seconds above '
            "zero (30) or 500ms, 30s, 5m, 1h, 1d",
        ),
        (
            'applies_to: "*"\nrate_limits: [{action: a, limit: 1, per: 0s}]',
            "rate_limits[0].per (line 3): must be longer than 0",
        ),
        (
            'applies_to: "*"\nscopes: {send_email: [CRM]}',
            'scopes.send_email[0] (line 3): "CRM" is not a data scope: use lower-case dotted '
            'names such as crm.contacts, or "*"',
        ),
        (
            'applies_to: "*"\nscopes: {Send: [crm]}',
            'scopes (line 3): "Send" is not an action name: use lower-case letters, digits, '
            "'.', '_', '-', ':' or '/', starting with a letter (a tool call is mcp:SERVER/TOOL), "
            'or "*" for every action',
        ),
        (
            'applies_to: "*"\nbudgets: {per_day: {dollars: 5}}',
            "budgets.per_day (line 3): Additional properties are not allowed ('dollars' was "
            "unexpected)",
        ),
        (
            'applies_to: "*"\nbudgets: {warn_at: 1.5}',
            "budgets.warn_at (line 3): 1.5 is greater than the maximum of 1",
        ),
    ],
)
def test_plain_messages_for_the_usual_mistakes(fragment: str, expected: str) -> None:
    assert problems(f"version: 1\n{fragment}\n") == [expected]


def test_yaml_that_does_not_parse_or_is_not_a_mapping() -> None:
    (broken,) = problems("version: 1\napplies_to: [unclosed\n")
    assert broken.startswith("(file) (line 3): not valid YAML")
    assert problems("- a list\n") == ["(file): a policy is a mapping with version and applies_to"]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30.0),
        (0.5, 0.5),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
    ],
)
def test_durations(value: float | str, seconds: float) -> None:
    assert parse_duration(value) == seconds


def test_a_directory_of_policies_loads_in_path_order(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text('version: 1\napplies_to: "*"\n')
    (tmp_path / "a.yml").write_text('version: 2\napplies_to: "*"\n')
    (tmp_path / "notes.txt").write_text("not a policy")

    assert [(p.name, p.version) for p in load_dirs([tmp_path])] == [("a", 2), ("b", 1)]
    assert load_file(tmp_path / "b.yaml").source == str(tmp_path / "b.yaml")


def test_a_missing_directory_or_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="is not a directory"):
        policy_files([tmp_path / "nowhere"])
    (tmp_path / "latin1.yaml").write_bytes(b"version: 1\ndescription: caf\xe9\n")
    with pytest.raises(PolicyError, match="cannot be read"):
        load_file(tmp_path / "latin1.yaml")


def test_the_shipped_schema_is_a_valid_2020_12_schema() -> None:
    jsonschema_rs.meta.validate(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
