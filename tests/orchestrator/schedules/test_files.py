"""Schedules written in YAML: what they mean, and problems by file, field and line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.schedules.definition import Schedule, ScheduleSpec
from orchestrator.schedules.errors import ScheduleFileError
from orchestrator.schedules.files import load_dirs, load_text
from orchestrator.schedules.policy import CatchUp
from orchestrator.schedules.timing import Cron, Every

GOOD = """\
schedules:
  nightly-report:
    cron: "30 2 * * *"
    timezone: Europe/Berlin
    catch_up: {bounded: 3}
    goal:
      type: report.daily
      input:
        day: "${fire_time}"
        note: "slot ${slot} of ${schedule}"
  heartbeat:
    every: 30s
    goal: {type: ops.ping}
"""


def test_a_file_defines_schedules() -> None:
    found = {entry.schedule.name: entry for entry in load_text(GOOD, source="s.yaml")}
    nightly = found["nightly-report"].schedule
    assert isinstance(nightly.timing, Cron)
    assert nightly.timing.expression == "30 2 * * *"
    assert nightly.catch_up == CatchUp("bounded", 3)
    heartbeat = found["heartbeat"].schedule
    assert heartbeat.timing == Every(30)
    assert heartbeat.catch_up == CatchUp("one")  # the default
    assert found["heartbeat"].file == "s.yaml"


def test_the_goal_input_gets_the_slot_variables() -> None:
    nightly = load_text(GOOD)[0].schedule
    slot = datetime(2025, 7, 1, 0, 30, tzinfo=UTC)
    assert nightly.goal_input(slot) == {
        "day": "2025-07-01T02:30:00+02:00",
        "note": "slot 20250701T003000Z of nightly-report",
    }
    assert nightly.goal_id(slot) == "schedule:nightly-report:20250701T003000Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "schedules:\n  a:\n    cron: '* * *'\n    goal: {type: x}\n",
            "schedules.a.cron (line 3): Value error, '* * *' has 3 field(s)",
        ),
        (
            "schedules:\n  a:\n    every: 30s\n    goal:\n      type: x\n"
            "      input: {v: '${/body}'}\n",
            "schedules.a.goal.input (line 6): ${/body} is not a schedule variable",
        ),
        (
            "schedules:\n  a:\n    every: 30s\n    timezone: Mars/Base\n    goal: {type: x}\n",
            "schedules.a.timezone (line 4): 'Mars/Base' is not an IANA time zone",
        ),
        (
            "schedules:\n  a:\n    goal: {type: x}\n",
            "schedules.a (line 3): give exactly one of cron: (an expression) and every:",
        ),
        (
            "schedules:\n  a:\n    every: 30s\n    catch_up: some\n    goal: {type: x}\n",
            "schedules.a.catch_up",
        ),
        (
            "schedules:\n  Bad Name:\n    every: 1s\n    goal: {type: x}\n",
            "schedules.Bad Name (line 3): 'Bad Name' is not a schedule name",
        ),
        ("steps: []\n", "(top level) (line 1): a schedules file is one mapping"),
        ("schedules: [\n", "(file)"),
    ],
)
def test_a_bad_file_names_field_and_line(text: str, expected: str) -> None:
    with pytest.raises(ScheduleFileError) as caught:
        load_text(text, source="dir/schedules/x.yaml")
    assert f"dir/schedules/x.yaml: {expected}".replace("Value error, ", "") in str(caught.value)


def test_schedules_are_read_from_the_playbook_directories(tmp_path: Path) -> None:
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules" / "a.yaml").write_text(GOOD)
    names = [entry.schedule.name for entry in load_dirs([tmp_path])]
    assert names == ["heartbeat", "nightly-report"]
    (tmp_path / "schedules" / "b.yml").write_text(
        "schedules:\n  heartbeat:\n    every: 1m\n    goal: {type: x}\n"
    )
    with pytest.raises(ScheduleFileError, match=r"'heartbeat' is also defined in .*a\.yaml"):
        load_dirs([tmp_path])


def test_a_stored_definition_reads_back_the_same() -> None:
    nightly = load_text(GOOD)[0].schedule
    again = Schedule.read(nightly.name, nightly.document())
    assert again == nightly
    assert ScheduleSpec.model_validate(nightly.document()) == nightly.spec
