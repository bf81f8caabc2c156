"""Schedules defined in YAML, in a ``schedules/`` directory inside a playbook directory.

Each file is one mapping ``schedules: {name: definition}`` (definition.py). The
playbook loader reads only the files directly in a playbook directory, so the
subdirectory keeps the two apart. Problems are reported as ``file: field (line N):
message``, every one of them before anything is used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.playbooks.loader import builtin_dir
from orchestrator.schedules.definition import BAD_NAME, NAME, Schedule, ScheduleSpec
from orchestrator.schedules.errors import ScheduleFileError
from waypost.yamlfile import Problem, YamlSyntaxError, named_entries

SUBDIRECTORY = "schedules"
LAYOUT = "a schedules file is one mapping: schedules: {NAME: {cron or every, goal, ...}}"


@dataclass(frozen=True, slots=True)
class FileSchedule:
    """A schedule and the file that defines it."""

    schedule: Schedule
    file: str


def load_text(text: str, *, source: str = "<text>") -> list[FileSchedule]:
    """The schedules of one file's text; ScheduleFileError listing every problem."""
    try:
        specs, problems = named_entries(
            text,
            key="schedules",
            layout=LAYOUT,
            name=NAME,
            bad_name=BAD_NAME,
            build=lambda _name, raw: ScheduleSpec.model_validate(raw),
        )
    except YamlSyntaxError as exc:
        raise ScheduleFileError(source, [exc.problem]) from None
    if problems:
        raise ScheduleFileError(source, problems)
    return [FileSchedule(Schedule.of(name, spec), source) for name, spec in specs.items()]


def load_dirs(playbook_dirs: Iterable[Path]) -> list[FileSchedule]:
    """Every schedule in the ``schedules/`` directories of these playbook directories
    (and of the built-in playbooks), by name; a name defined twice is a problem."""
    found: dict[str, FileSchedule] = {}
    for directory in [builtin_dir(), *playbook_dirs]:
        folder = directory / SUBDIRECTORY
        if not folder.is_dir():
            continue
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            for entry in load_text(path.read_text(encoding="utf-8"), source=str(path)):
                name = entry.schedule.name
                if name in found:
                    raise ScheduleFileError(
                        str(path),
                        [
                            Problem(
                                f"schedules.{name}",
                                f"schedule {name!r} is also defined in {found[name].file}; "
                                "rename one of them",
                            )
                        ],
                    )
                found[name] = entry
    return [found[name] for name in sorted(found)]
