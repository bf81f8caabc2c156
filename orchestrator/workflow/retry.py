"""Retry delays: exponential backoff with equal jitter (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delay before the attempt after ``attempt``: between half and all of the capped
    exponential (``initial * 2**(attempt-1)``, at most ``max``).

    Equal jitter keeps delays growing visibly while spreading retries of many tasks that
    failed together, so they do not return in one burst.
    """

    initial_s: float = 1.0
    max_s: float = 60.0

    def delay(self, attempt: int, random: Callable[[], float]) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_s, self.initial_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + random() * ceiling / 2
