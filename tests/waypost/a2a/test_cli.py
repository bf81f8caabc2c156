"""`waypost a2a bridge --check`: bridge files validated and listed, errors with file,
field and line, exit status 1."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from waypost.cli.main import main

VALID = """\
bridges:
  refunds:
    card: https://refunds.example.com
    skill: refund
    agent: refund-desk
    headers: {Authorization: "Bearer ${REFUNDS_TOKEN}"}
  quotes:
    endpoint: http://127.0.0.1:9000/a2a
"""


def test_check_lists_each_valid_bridge(tmp_path: Path) -> None:
    path = tmp_path / "bridges.yaml"
    path.write_text(VALID)

    shown = CliRunner().invoke(main, ["a2a", "bridge", "--check", "--config", str(path)])

    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines() == [
        "quotes: endpoint http://127.0.0.1:9000/a2a, skill (none), action a2a:quotes, "
        "environment variables: none",
        "refunds: card https://refunds.example.com/.well-known/agent-card.json, skill refund, "
        "action a2a:refund-desk/refund, environment variables: REFUNDS_TOKEN",
        "2 bridge(s) valid",
    ]


def test_check_names_file_field_and_line_of_an_invalid_bridge(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(VALID)
    (tmp_path / "bad.yaml").write_text(
        "bridges:\n  payouts:\n    card: https://p.example\n    timeout: -1\n"
    )

    shown = CliRunner().invoke(
        main, ["a2a", "bridge", "--check"], env={"WAYPOST_A2A_BRIDGES": str(tmp_path)}
    )

    assert shown.exit_code == 2
    assert f"{tmp_path / 'bad.yaml'}: bridges.payouts.timeout (line 4): " in shown.output


def test_help_says_what_the_bridge_does() -> None:
    shown = CliRunner().invoke(main, ["a2a", "bridge", "--help"])

    assert shown.exit_code == 0
    assert "--config FILE_OR_DIR" in shown.output
    assert "remote A2A agent" in shown.output
