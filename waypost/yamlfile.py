"""Reading a YAML config file (a playbook, a policy, a tool-server file) and saying where
it is wrong: the field's path and its line, so every config error reads
``file: field (line N): message``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a file."""

    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.field} (line {self.line})" if self.line else self.field
        return f"{where}: {self.message}"


def field_path(path: Iterable[str | int]) -> str:
    """``steps[2].input`` for the path ("steps", 2, "input")."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def line_of(node: yaml.Node | None, path: Iterable[str | int]) -> int | None:
    """The 1-based line of the YAML node at ``path`` (or its nearest existing parent)."""
    current = node
    for part in path:
        if isinstance(current, yaml.MappingNode):
            children = {key.value: value for key, value in current.value}
            if part not in children:
                break
            current = children[part]
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(current.value):
                break
            current = current.value[part]
        else:
            break
    return current.start_mark.line + 1 if current is not None else None


def parse(text: str) -> tuple[yaml.Node | None, Any]:
    """The YAML text's node tree (for lines) and its document; a ``Problem`` of the whole
    file, with the line, raised as ``YamlSyntaxError`` when it is not valid YAML."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise YamlSyntaxError(Problem("(file)", f"not valid YAML: {exc}", line)) from None


class YamlSyntaxError(ValueError):
    """Text that is not valid YAML; ``problem`` says where."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


Stat = tuple[int, int, int]  # a config file's mtime_ns, size and inode
_RACY_NS = 2_000_000_000  # file systems with coarse timestamps tick at most this slowly


def stat_of(path: Path) -> Stat | None:
    """The file's stat as config reloaders compare it (None: it is gone)."""
    try:
        status = path.stat()
    except OSError:
        return None
    # Nanosecond mtime, size and inode: an editor's replace or a rewrite shows.
    return (status.st_mtime_ns, status.st_size, status.st_ino)


def unchanged_since_read(read: Stat, read_at_ns: int, now: Stat) -> bool:
    """True if the stat ``now`` proves a file unchanged since it was read (its stat then
    ``read``, at wall-clock ``read_at_ns``).

    A write in the same timestamp tick as the read, keeping the size, leaves the stat as
    it was; so a file modified shortly before it was read counts as changed (to be read
    again) until its modification time is older than that.
    """
    return now == read and now[0] < read_at_ns - _RACY_NS


M = TypeVar("M", bound=pydantic.BaseModel)


def named_entries(
    text: str,
    *,
    key: str,
    layout: str,
    name: re.Pattern[str],
    bad_name: str,
    build: Callable[[str, dict[str, Any]], M],
) -> tuple[dict[str, M], list[Problem]]:
    """The entries of a file that is one mapping ``{key: {name: settings}}`` (tool
    servers, A2A bridges), each made by ``build(name, settings)`` (a pydantic model
    validation), and every problem found, with its field and line, in line order.

    ``layout`` says what the whole file must be, ``bad_name`` what a name must look like
    (after the offending name); YamlSyntaxError for text that is not YAML."""
    node, document = parse(text)
    entries = document.get(key) if isinstance(document, dict) else None
    if not isinstance(entries, dict) or set(document) != {key}:
        return {}, [Problem("(top level)", layout, line_of(node, []))]
    found: dict[str, M] = {}
    problems: list[Problem] = []
    for entry, raw in entries.items():
        where: list[str | int] = [key, str(entry)]
        if not isinstance(entry, str) or not name.match(entry):
            problems.append(
                Problem(field_path(where), f"{entry!r} {bad_name}", line_of(node, where))
            )
            continue
        if not isinstance(raw, dict):
            problems.append(Problem(field_path(where), "must be a mapping", line_of(node, where)))
            continue
        try:
            found[entry] = build(entry, raw)
        except pydantic.ValidationError as exc:
            for error in exc.errors():
                path = [*where, *(p for p in error["loc"] if isinstance(p, str | int))]
                message = str(error["msg"]).removeprefix("Value error, ")
                problems.append(Problem(field_path(path), message, line_of(node, path)))
    problems.sort(key=lambda problem: problem.line or 0)
    return found, problems


def yaml_files(paths: Sequence[Path]) -> list[Path]:
    """The files named, and the ``*.yaml``/``*.yml`` files of the directories named."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        else:
            files.append(path)
    return files


T = TypeVar("T")
E = TypeVar("E", bound=Exception)


def load_named_files(
    paths: Sequence[Path],
    *,
    load: Callable[[str, str], dict[str, T]],
    error: type[E],
    clash: Callable[[str, T], Problem],
    nothing: str,
) -> tuple[dict[str, T], list[E]]:
    """The entries of every file ``yaml_files(paths)`` finds, by name, read with
    ``load(text, source)`` (which raises ``error(source, problems)``), and every problem:
    files that cannot be read or are invalid, a name ``clash`` (given the name and the entry
    that had it first), and, when nothing at all was found, ``nothing``."""
    errors: list[E] = []
    found: dict[str, T] = {}
    for path in yaml_files(paths):
        try:
            loaded = load(path.read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(error(str(path), [Problem("(file)", f"cannot be read: {exc}")]))
            continue
        except error as invalid:
            errors.append(invalid)
            continue
        for name, entry in loaded.items():
            if name in found:
                errors.append(error(str(path), [clash(name, found[name])]))
                continue
            found[name] = entry
    if not errors and not found:
        shown = ", ".join(str(p) for p in paths) or "(none given)"
        errors.append(error(shown, [Problem("(files)", nothing)]))
    return found, errors
