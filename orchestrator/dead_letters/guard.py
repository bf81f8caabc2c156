"""The loop guard: a message that fails again after every replay is not replayed forever.

Each replayed record carries how many replays led to it (``waypost-replay-count``), and
its next dead letter keeps that count; once it reaches the limit (``max_replays``) the
dead letter is refused unless the analyst forces the replay (``--force``).
"""

from __future__ import annotations


def refusal(replay_count: int, *, max_replays: int, force: bool) -> str | None:
    """Why the loop guard stops a dead letter whose message was replayed ``replay_count``
    times already (None: it may be sent)."""
    if replay_count < max_replays or force:
        return None
    return (
        f"its message was replayed {replay_count} time(s) already "
        f"(limit {max_replays}); force the replay to send it anyway"
    )
