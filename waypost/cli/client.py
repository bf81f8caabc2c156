"""A small client of the Waypost HTTP API for the CLI and the demo."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from waypost.errors import WaypostError

FINISHED = ("completed", "failed", "cancelled")


class ApiError(WaypostError):
    """The HTTP API refused a request (``status``, the problem's ``detail``) or could not
    be reached (None)."""

    def __init__(self, message: str, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class Client:
    """Talks to one Waypost HTTP app."""

    def __init__(self, base_url: str, timeout_s: float = 10.0, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, headers=headers)

    def close(self) -> None:
        """Release connections."""
        self._http.close()

    def submit_goal(
        self, goal_type: str, goal_input: Mapping[str, Any], goal_id: str | None = None
    ) -> str:
        """Submit a goal; returns the workflow id."""
        headers = {"Idempotency-Key": goal_id} if goal_id else {}
        body = self._request(
            "POST",
            "/api/v1/goals",
            json={"type": goal_type, "input": dict(goal_input)},
            headers=headers,
        )
        return str(body["workflow_id"])

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        """One workflow with its tasks."""
        found: dict[str, Any] = self._request("GET", f"/api/v1/workflows/{workflow_id}")
        return found

    def workflows(self, **filters: Any) -> dict[str, Any]:
        """A page of workflows."""
        params = {k: v for k, v in filters.items() if v is not None}
        page: dict[str, Any] = self._request("GET", "/api/v1/workflows", params=params)
        return page

    def cancel(self, workflow_id: str, reason: str) -> dict[str, Any]:
        """Cancel a workflow; returns it as it is now (``cancelled``)."""
        found: dict[str, Any] = self._request(
            "POST", f"/api/v1/workflows/{workflow_id}/cancel", json={"reason": reason}
        )
        return found

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any API request; returns the JSON answer or raises ApiError saying why not."""
        return self._request(method, path, **kwargs)

    def ready(self) -> bool:
        """True when the app answers /readyz with 200."""
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def wait(
        self,
        workflow_id: str,
        *,
        timeout_s: float,
        on_change: Callable[[dict[str, Any]], None] | None = None,
        interval_s: float = 0.25,
        until: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """Poll a workflow until it finishes (or ``until`` says so); calls ``on_change``
        whenever it changed."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while True:
            workflow = self.workflow(workflow_id)
            shape = [(t["step"], t["status"], t["attempt"]) for t in workflow["tasks"]]
            if (workflow["status"], shape) != last and on_change is not None:
                on_change(workflow)
            last = (workflow["status"], shape)
            if workflow["status"] in FINISHED or (until is not None and until(workflow)):
                return workflow
            if time.monotonic() > deadline:
                raise ApiError(
                    f"workflow {workflow_id} is still {workflow['status']} after {timeout_s:g} s; "
                    f"follow it with `waypost workflow show {workflow_id}`"
                )
            time.sleep(interval_s)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(
                f"cannot reach the Waypost HTTP app at {self.base_url} ({exc}); "
                "is `waypost up` running?"
            ) from None
        if response.status_code == 401:
            raise ApiError(
                f"{method} {path}: not authenticated. Set WAYPOST_API_TOKEN to a token from "
                "`waypost token create --role admin` (a `waypost up` stack keeps one in its "
                "data directory).",
                401,
            )
        if response.status_code >= 400:
            try:
                problem = response.json()
                detail = problem.get("detail") or problem.get("title")
            except ValueError:
                detail = response.text[:500]
            raise ApiError(
                f"{method} {path} failed ({response.status_code}): {detail}",
                response.status_code,
                str(detail),
            )
        return response.json()
