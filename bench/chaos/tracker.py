"""Following workflows through the HTTP API: which finished, how and when.

While a run goes on, the tracker pages through `GET /api/v1/workflows?status=...` for
completed and failed workflows of the run's goal type every couple of seconds (a few
requests instead of one per workflow). At the end, every workflow not seen completed is
asked for one by one with `GET /api/v1/workflows/{id}`, which gives the verdict.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from bench.chaos.load import GOAL_TYPE

TERMINAL = ("completed", "failed")
STUCK = ("running", "planning", "accepted")
"""Statuses of a workflow that is neither finished nor gone."""


@dataclass(frozen=True, slots=True)
class Finished:
    """A workflow the API reported finished."""

    status: str
    finished_at: float | None
    reason: str | None


@dataclass(frozen=True)
class Verdict:
    """What `GET /api/v1/workflows/{id}` said about a workflow not seen completed."""

    workflow_id: str
    status: str
    """completed, failed, running, planning, accepted, cancelled, missing (404) or
    unknown (no answer)."""
    reason: str | None
    tasks: str
    """Each task as step:status@attempt/max_attempts, for the report."""
    finished_at: float | None = None


class Tracker:
    """Keeps ``finished`` up to date from the HTTP API in a thread of its own."""

    def __init__(
        self, http_url: str, token: str, interval_s: float = 2.0, goal_type: str = GOAL_TYPE
    ) -> None:
        self._goal_type = goal_type
        self._client = httpx.Client(
            base_url=http_url, headers={"Authorization": f"Bearer {token}"}, timeout=15.0
        )
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._finished: dict[str, Finished] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tracker", daemon=True)
        self.errors = 0
        self.last_error: str | None = None

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        self._thread.join(30)

    def close(self) -> None:
        """Release connections."""
        self._client.close()

    def finished(self) -> dict[str, Finished]:
        """A copy of workflow id -> how it finished."""
        with self._lock:
            return dict(self._finished)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sweep()
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
            self._stop.wait(self._interval_s)

    def sweep(self) -> None:
        """One pass over every finished workflow of the goal type."""
        found: dict[str, Finished] = {}
        for status in TERMINAL:
            for item in self._pages(status):
                found[item["id"]] = Finished(
                    item["status"], _epoch(item.get("finished_at")), item.get("reason")
                )
        with self._lock:
            self._finished.update(found)

    def _pages(self, status: str) -> Iterable[dict[str, Any]]:
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {
                "type": self._goal_type,
                "status": status,
                "limit": 200,
            }
            if cursor:
                params["cursor"] = cursor
            response = self._client.get("/api/v1/workflows", params=params)
            response.raise_for_status()
            page = response.json()
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor or self._stop.is_set():
                return

    def verdict(self, workflow_id: str, timeout_s: float = 30.0) -> Verdict:
        """Ask for one workflow, retrying failed requests for up to ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        problem = "no answer"
        while time.monotonic() < deadline:
            try:
                response = self._client.get(f"/api/v1/workflows/{workflow_id}")
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
                time.sleep(1)
                continue
            if response.status_code == 404:
                return Verdict(workflow_id, "missing", "404 from the API", "")
            if response.status_code != 200:
                problem = f"HTTP {response.status_code}"
                time.sleep(1)
                continue
            body = response.json()
            reason = body.get("reason")
            error = body.get("error")
            if error:
                reason = f"{reason or ''} [{error.get('type')}: {error.get('message')}]".strip()
            tasks = " ".join(
                f"{t['step']}:{t['status']}@{t['attempt']}/{t['max_attempts']}"
                for t in body.get("tasks", [])
            )
            return Verdict(
                workflow_id, body["status"], reason, tasks, _epoch(body.get("finished_at"))
            )
        return Verdict(workflow_id, "unknown", problem, "")


def _epoch(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
