"""Driving the real processes as a client and a reviewer would, over the JSON API:
shared by the end-to-end tests of workflows, traces and metrics."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import httpx

from orchestrator.workflow.state import WorkflowState
from tests.e2e.conftest import Platform
from tests.waiting import wait_for
from waypost.stack.process import free_port

BUILTIN_AGENTS = ("agents.support", "agents.billing", "agents.onboarding")


@contextmanager
def serving(
    platform: Platform, agent_modules: Sequence[str], *, metrics_ports: Mapping[str, int] = {}
) -> Iterator[httpx.Client]:
    """Start an orchestrator, one agent worker running ``agent_modules`` and `waypost
    serve`; yield a client of the HTTP app with an admin token, once it is ready.
    ``metrics_ports`` names the /metrics ports of "orchestrator" and "agents"."""
    port = free_port()
    platform.env_overrides["WAYPOST_HTTP_PORT"] = str(port)
    platform.start(
        "orchestrator", "orchestrator", "run", metrics_port=metrics_ports.get("orchestrator")
    )
    platform.start(
        "agents", "agent", "run", *agent_modules, metrics_port=metrics_ports.get("agents")
    )
    platform.start("http", "serve")
    token = platform.api_token()
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ) as client:

        def ready() -> bool:
            try:
                return client.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout=60, interval=0.2, what="the HTTP app to be ready")
        yield client


def submit(api: httpx.Client, goal_type: str, goal_input: dict[str, Any]) -> str:
    """POST a goal; its workflow id."""
    response = api.post("/api/v1/goals", json={"type": goal_type, "input": goal_input})
    assert response.status_code == 202, response.text
    workflow_id: str = response.json()["workflow_id"]
    return workflow_id


def escalation_of(api: httpx.Client, workflow_id: str) -> dict[str, Any]:
    """The workflow's pending escalation as the API shows it, once there is one."""

    def found() -> dict[str, Any] | None:
        listing = api.get("/api/v1/escalations", params={"page_size": 200})
        listing.raise_for_status()
        for item in listing.json()["items"]:
            if item["workflow_id"] == workflow_id and item["status"] == "pending":
                response = api.get(f"/api/v1/escalations/{item['id']}")
                response.raise_for_status()
                body: dict[str, Any] = response.json()
                return body
        return None

    return wait_for(found, timeout=90, interval=0.2, what=f"an escalation of {workflow_id}")


def decide(api: httpx.Client, escalation: dict[str, Any], action: str, **fields: Any) -> str:
    """Post a decision bound to the version and digest the reviewer saw; its id."""
    response = api.post(
        f"/api/v1/escalations/{escalation['id']}/decision",
        json={
            "action": action,
            "version": escalation["version"],
            "digest": escalation["digest"],
            **fields,
        },
    )
    assert response.status_code == 202, response.text
    decision_id: str = response.json()["decision_id"]
    return decision_id


def finished(platform: Platform, workflow_id: str) -> WorkflowState:
    """The workflow once it completed or failed."""

    def probe() -> WorkflowState | None:
        state = platform.workflow(workflow_id)
        return state if state is not None and state.status.finished else None

    return wait_for(probe, timeout=90, what=f"workflow {workflow_id} to finish")


def statuses(state: WorkflowState) -> dict[str, str]:
    """Each step's status."""
    return {name: task.status.value for name, task in state.tasks.items()}
