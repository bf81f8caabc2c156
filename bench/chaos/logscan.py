"""What the platform's logs said during a run: warnings, errors and exceptions, grouped.

Lines are grouped across the log files by their message with the variable parts blanked
out (librdkafka's bracketed tags, dotted names such as topics and addresses, quoted
strings, ids and numbers), so a message repeated a thousand times, or by every process,
shows once with its count, its files and its first occurrence. Most severe first.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

_LEVEL = re.compile(r"\b(WARNING|WARN|ERROR|CRITICAL|FATAL|PANIC)\b")
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b(:|$)")
_VARIABLE = re.compile(
    r"\[[^\]]*\]|'[^']*'|\"[^\"]*\"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|[A-Za-z0-9+/]{16,}={0,2}|\b[\w+/-]+(\.[\w+/-]+)+|\d+"
)
_SEVERITY = {"PANIC": 0, "FATAL": 0, "CRITICAL": 0, "exception": 0, "ERROR": 1}


@dataclass
class LogNote:
    """One kind of line and where it appeared."""

    level: str
    count: int
    first: str
    files: Counter[str] = field(default_factory=Counter)

    def render(self) -> str:
        """One line for the report."""
        where = ",".join(sorted(name.removesuffix(".log") for name in self.files))
        return f"{self.count:6d} x {self.level} in {where}: {self.first}"


def scan(log_dir: Path, *, width: int = 300) -> list[LogNote]:
    """Warnings, errors and exception lines of every log, most severe and frequent first."""
    notes: dict[tuple[str, str], LogNote] = {}
    for path in sorted(log_dir.glob("*.log")):
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            match = _LEVEL.search(line)
            if match is not None:
                level, message = match.group(1), line[match.end() :]
            elif _EXCEPTION.match(line):
                level, message = "exception", line
            else:
                continue
            key = (level, _VARIABLE.sub("#", message)[:200])
            note = notes.setdefault(key, LogNote(level, 0, line[:width]))
            note.count += 1
            note.files[path.name] += 1
    return sorted(notes.values(), key=lambda n: (_SEVERITY.get(n.level, 2), -n.count))
