"""Bridge files: what they accept, and errors naming file, field and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from waypost.a2a.config import load_bridges, load_text
from waypost.a2a.errors import BridgeConfigError, InvalidBridges

GOOD = """\
bridges:
  refunds:
    card: https://refunds.example.com
    skill: refund
    agent: refund-desk
    headers: {Authorization: "Bearer ${REFUNDS_TOKEN}", X-Team: payments}
    timeout: 2m
    poll_interval: 500ms
    concurrency: 2
  quotes:
    endpoint: http://127.0.0.1:9000/a2a
"""


def test_a_valid_file_names_each_capability_its_remote_agent_and_action() -> None:
    bridges = load_text(GOOD, source="bridges.yaml")

    refunds, quotes = bridges["refunds"], bridges["quotes"]
    assert refunds.card_url == "https://refunds.example.com/.well-known/agent-card.json"
    assert (refunds.action, refunds.timeout, refunds.poll_interval) == (
        "a2a:refund-desk/refund",
        120.0,
        0.5,
    )
    assert refunds.concurrency == 2
    assert refunds.references() == ["REFUNDS_TOKEN"]
    assert refunds.source == "bridges.yaml"
    # Without agent and skill: the capability names the agent, the action has no skill.
    assert (quotes.agent, quotes.action, quotes.card_url) == ("quotes", "a2a:quotes", None)
    assert quotes.endpoint == "http://127.0.0.1:9000/a2a"
    assert (quotes.timeout, quotes.poll_interval, quotes.concurrency) == (300.0, 1.0, 4)


def test_a_card_url_ending_in_json_is_used_as_it_is() -> None:
    bridges = load_text("bridges:\n  x:\n    card: https://a.example.com/cards/x.json\n")

    assert bridges["x"].card_url == "https://a.example.com/cards/x.json"


@pytest.mark.parametrize(
    ("text", "field", "line", "words"),
    [
        (
            "bridges:\n  refunds:\n    skill: refund\n",
            "bridges.refunds",
            3,
            "give either card (the agent card's URL) or endpoint",
        ),
        (
            "bridges:\n  refunds:\n    card: https://a.example.com\n"
            "    headers: {Authorization: Bearer abc123}\n",
            "bridges.refunds",
            3,
            "headers.Authorization looks like a secret",
        ),
        (
            "bridges:\n  refunds:\n    card: https://a.example.com/${TOKEN}\n",
            "bridges.refunds",
            3,
            "a URL cannot hold a ${NAME} reference",
        ),
        (
            "bridges:\n  refunds:\n    card: ftp://a.example.com\n",
            "bridges.refunds",
            3,
            "must start with http:// or https://",
        ),
        (
            "bridges:\n  refunds:\n    card: https://a.example.com\n    timeout: soon\n",
            "bridges.refunds.timeout",
            4,
            "",
        ),
        (
            "bridges:\n  refunds:\n    card: https://a.example.com\n    colour: blue\n",
            "bridges.refunds.colour",
            4,
            "Extra inputs are not permitted",
        ),
        (
            "bridges:\n  Refunds:\n    card: https://a.example.com\n",
            "bridges.Refunds",
            3,
            "is not a capability name",
        ),
        (
            "bridges:\n  refunds:\n    card: https://a.example.com\n    skill: Pay Out\n",
            "bridges.refunds.skill",
            4,
            "is not a skill id",
        ),
        ("servers: {}\n", "(top level)", 1, "a bridge file is a mapping with one key, bridges"),
        ("bridges: [\n", "(file)", None, "not valid YAML"),
    ],
)
def test_an_invalid_file_is_refused_naming_field_and_line(
    text: str, field: str, line: int | None, words: str
) -> None:
    with pytest.raises(BridgeConfigError) as raised:
        load_text(text, source="b.yaml")

    problem = raised.value.problems[0]
    assert problem.field == field
    if line is not None:
        assert problem.line == line
    assert words in problem.message
    assert str(raised.value).startswith("invalid A2A bridges b.yaml:\n  b.yaml: ")


def test_files_and_directories_are_loaded_and_clashes_reported(tmp_path: Path) -> None:
    directory = tmp_path / "bridges"
    directory.mkdir()
    (directory / "a.yaml").write_text("bridges:\n  one:\n    endpoint: http://h/a2a\n")
    (directory / "b.yml").write_text("bridges:\n  two:\n    endpoint: http://h/a2a\n")
    (directory / "notes.txt").write_text("not a bridge file")
    single = tmp_path / "single.yaml"
    single.write_text("bridges:\n  three:\n    endpoint: http://h/a2a\n")

    assert sorted(load_bridges([directory, single])) == ["one", "three", "two"]

    single.write_text("bridges:\n  one:\n    endpoint: http://other/a2a\n")
    with pytest.raises(InvalidBridges) as raised:
        load_bridges([directory, single])
    assert f"capability 'one' is also bridged in {directory / 'a.yaml'}" in str(raised.value)


def test_no_bridge_at_all_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidBridges, match="no bridge is configured there"):
        load_bridges([tmp_path])
