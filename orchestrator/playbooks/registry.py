"""Every playbook an installation knows, by goal type."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from orchestrator.errors import InvalidGoalInput, PlaybookError, Problem, UnknownGoalType
from orchestrator.playbooks.loader import builtin_dir, load_dirs
from orchestrator.playbooks.model import Playbook


class PlaybookRegistry:
    """Playbooks by the goal type they plan."""

    def __init__(self, playbooks: Iterable[Playbook]) -> None:
        self._by_type: dict[str, Playbook] = {}
        for playbook in playbooks:
            if playbook.type in self._by_type:
                other = self._by_type[playbook.type].source
                raise PlaybookError(
                    playbook.source,
                    [
                        Problem(
                            "type",
                            f"goal type {playbook.type!r} is already planned by {other}; "
                            "give one of them another type",
                        )
                    ],
                )
            self._by_type[playbook.type] = playbook

    @classmethod
    def load(cls, extra_dirs: Sequence[Path] = ()) -> PlaybookRegistry:
        """The built-in playbooks plus those in ``extra_dirs``."""
        return cls(load_dirs([builtin_dir(), *extra_dirs]))

    def get(self, goal_type: str) -> Playbook | None:
        """The playbook for a goal type, or None."""
        return self._by_type.get(goal_type)

    def require(self, goal_type: str) -> Playbook:
        """The playbook for a goal type; UnknownGoalType if there is none."""
        playbook = self._by_type.get(goal_type)
        if playbook is None:
            raise UnknownGoalType(goal_type, self.types())
        return playbook

    def check_goal(self, goal_type: str, goal_input: object) -> Playbook:
        """The playbook, after checking the goal input against its input_schema."""
        playbook = self.require(goal_type)
        problems = playbook.input_problems(goal_input)
        if problems:
            raise InvalidGoalInput(goal_type, problems)
        return playbook

    def by_digest(self, digest: str) -> Playbook | None:
        """The loaded playbook with this digest (one of the current versions), or None."""
        for playbook in self._by_type.values():
            if playbook.digest == digest:
                return playbook
        return None

    def types(self) -> list[str]:
        """Known goal types, sorted."""
        return sorted(self._by_type)

    def capabilities(self) -> frozenset[str]:
        """Every capability any playbook uses."""
        return frozenset(c for p in self._by_type.values() for c in p.capabilities)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_type.values())
