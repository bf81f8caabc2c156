"""Submitting goals over the HTTP API at a steady pace, from a few threads.

A POST that fails while a fault is on (a connection error, a timeout, a 5xx or 429) is
sent again with the same ``Idempotency-Key`` (the goal id) until it is accepted, so a
goal is submitted once however often it is sent. Any other refusal is recorded and not
retried.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

GOAL_TYPE = "chaos.pair"
"""The goal type submitted unless another is given."""


@dataclass
class Submissions:
    """What the submitter did so far (read under its lock)."""

    accepted: dict[str, float] = field(default_factory=dict)
    """Goal id -> when its 202 arrived (time.time())."""
    retries: int = 0
    retry_reasons: Counter[str] = field(default_factory=Counter)
    refused: dict[str, str] = field(default_factory=dict)
    """Goal id -> why the API refused it for good (4xx other than 429)."""
    gave_up: list[str] = field(default_factory=list)
    """Goals never accepted before the give-up time."""


class Submitter:
    """Sends ``goal_ids`` as goals of ``goal_type`` (input ``{"n": index}``), ``rate``
    per second overall."""

    def __init__(
        self,
        http_url: str,
        token: str,
        goal_ids: Sequence[str],
        *,
        rate: float,
        threads: int,
        give_up_s: float,
        goal_type: str = GOAL_TYPE,
    ) -> None:
        self._url = http_url
        self._goal_type = goal_type
        self._token = token
        self._ids = list(goal_ids)
        self._rate = rate
        self._give_up_s = give_up_s
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._started = 0.0
        self.state = Submissions()
        self._threads = [
            threading.Thread(target=self._work, name=f"submit-{n}", daemon=True)
            for n in range(threads)
        ]

    def start(self) -> None:
        """Start sending."""
        self._started = time.monotonic()
        for thread in self._threads:
            thread.start()

    def done(self) -> bool:
        """True once every goal was accepted, refused or given up."""
        return not any(t.is_alive() for t in self._threads)

    def stop(self) -> None:
        """Stop sending (goals not yet sent stay unsent) and wait for the threads."""
        self._stop.set()
        for thread in self._threads:
            thread.join(35)

    def accepted(self) -> dict[str, float]:
        """A copy of goal id -> acceptance time."""
        with self._lock:
            return dict(self.state.accepted)

    def snapshot(self) -> tuple[int, int]:
        """(accepted so far, POSTs retried so far)."""
        with self._lock:
            return len(self.state.accepted), self.state.retries

    def _take(self) -> tuple[int, str] | None:
        with self._lock:
            if self._next >= len(self._ids):
                return None
            index = self._next
            self._next += 1
            return index, self._ids[index]

    def _work(self) -> None:
        headers = {"Authorization": f"Bearer {self._token}"}
        with httpx.Client(base_url=self._url, headers=headers, timeout=30.0) as client:
            while not self._stop.is_set():
                taken = self._take()
                if taken is None:
                    return
                index, goal_id = taken
                due = self._started + index / self._rate
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
                self._submit(client, index, goal_id)

    def _submit(self, client: httpx.Client, index: int, goal_id: str) -> None:
        give_up = time.monotonic() + self._give_up_s
        delay = 0.2
        while True:
            reason = self._post(client, index, goal_id)
            if reason is None:
                return
            with self._lock:
                self.state.retries += 1
                self.state.retry_reasons[reason] += 1
            if time.monotonic() + delay > give_up or self._stop.wait(delay):
                with self._lock:
                    self.state.gave_up.append(goal_id)
                return
            delay = min(delay * 2, 2.0)

    def _post(self, client: httpx.Client, index: int, goal_id: str) -> str | None:
        """One POST; None when settled (accepted or refused), else why to retry."""
        try:
            response = client.post(
                "/api/v1/goals",
                json={"type": self._goal_type, "input": {"n": index}},
                headers={"Idempotency-Key": goal_id},
            )
        except httpx.TimeoutException:
            return "timeout"
        except httpx.HTTPError as exc:
            return type(exc).__name__
        if response.status_code == 202:
            with self._lock:
                self.state.accepted[goal_id] = time.time()
            return None
        if response.status_code >= 500 or response.status_code == 429:
            return f"HTTP {response.status_code}"
        with self._lock:
            self.state.refused[goal_id] = f"HTTP {response.status_code}: {response.text[:200]}"
        return None
