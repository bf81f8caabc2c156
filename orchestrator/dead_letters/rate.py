"""Pacing a replay: a token bucket of messages per second, and chunks of a second's worth.

A replay decides and enqueues its dead letters a chunk at a time, each chunk in one
transaction; at a rate, a chunk is at most a second's worth, so the bucket lets it go at
once or after a short wait and the broker sees an even flow rather than bursts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

CHUNK = 500  # dead letters decided in one transaction, at most


def chunk_size(rate: float | None) -> int:
    """How many dead letters to decide at a time at ``rate`` (None: unlimited)."""
    return CHUNK if rate is None else max(1, min(CHUNK, int(rate)))


@dataclass
class TokenBucket:
    """At most ``rate`` tokens a second, bursts up to one second's worth."""

    rate: float
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(default=0.0, init=False)
    _at: float | None = field(default=None, init=False)

    def wait_for(self, tokens: int, stop: threading.Event) -> bool:
        """Block until ``tokens`` are available and take them; False if stopped first."""
        now = self.clock()
        if self._at is None:
            self._tokens, self._at = min(self.rate, tokens), now
        self._tokens = min(max(self.rate, tokens), self._tokens + (now - self._at) * self.rate)
        self._at = now
        short = tokens - self._tokens
        if short > 0 and stop.wait(short / self.rate):
            return False
        self._tokens -= tokens
        if short > 0:
            self._tokens, self._at = 0.0, self.clock()
        return True
