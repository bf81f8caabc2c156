"""How far a reviewer's edit moved an agent's output (pure).

Both outputs are written as canonical JSON (keys sorted, no spaces), so moving a key or
re-indenting is no change. The distance is one minus a similarity ratio in the manner
of difflib's, 2 * matched characters / both lengths: 0.0 for the same output, 1.0 for
outputs with nothing in common. An edit usually changes a part of an output, so the
common beginning and end are matched as they are, and difflib (quadratic in the worst
case) compares only what lies between, at most ``MAX_CHARS`` characters of each side;
a longer middle is estimated from its first ``MAX_CHARS`` characters. That keeps one
comparison to milliseconds whatever the outputs.
"""

from __future__ import annotations

import json
from difflib import SequenceMatcher
from typing import Any

MAX_CHARS = 800


def canonical(value: Any) -> str:
    """``value`` as canonical JSON text."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def edit_distance(proposed: Any, edited: Any) -> float:
    """The normalised distance from the agent's output to the reviewer's edit, in [0, 1]."""
    before, after = canonical(proposed), canonical(edited)
    if before == after:
        return 0.0
    total = len(before) + len(after)
    head = _common_prefix(before, after)
    before, after = before[head:], after[head:]
    tail = _common_prefix(before[::-1], after[::-1])
    if tail:
        before, after = before[:-tail], after[:-tail]
    matched = head + tail + _matched(before, after)
    return round(max(0.0, 1.0 - 2 * matched / total), 4)


def _matched(before: str, after: str) -> float:
    """Characters difflib matches between two texts (estimated past ``MAX_CHARS``)."""
    if not before or not after:
        return 0.0
    left, right = before[:MAX_CHARS], after[:MAX_CHARS]
    blocks = SequenceMatcher(None, left, right, autojunk=False).get_matching_blocks()
    found = sum(block.size for block in blocks)
    return found * (len(before) + len(after)) / (len(left) + len(right))


def _common_prefix(before: str, after: str) -> int:
    """How many characters the two texts begin with alike."""
    for index, (one, other) in enumerate(zip(before, after, strict=False)):
        if one != other:
            return index
    return min(len(before), len(after))
