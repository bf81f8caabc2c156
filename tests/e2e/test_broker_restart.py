"""A broker that restarts empty (Tansu memory storage) loses no workflow."""

from __future__ import annotations

import signal

import httpx
import pytest

from tests.e2e.conftest import Platform
from tests.waiting import wait_for
from waypost.stack.broker import EmbeddedBroker
from waypost.stack.process import free_port


@pytest.mark.slow
def test_workflows_in_flight_complete_after_the_broker_restarts_empty(
    platform: Platform, own_broker: EmbeddedBroker
) -> None:
    platform.bootstrap = own_broker.bootstrap
    http_port = free_port()
    platform.env_overrides["WAYPOST_HTTP_PORT"] = str(http_port)
    platform.start_orchestrator()
    platform.start_agents()
    platform.start("http", "serve")
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{http_port}",
        timeout=5,
        headers={"Authorization": f"Bearer {platform.api_token()}"},
    )
    wait_for(lambda: _ready(api), timeout=30, what="the HTTP app")

    # In flight when the broker dies (a workflow takes ~60 ms, so 16 of them queued at
    # 0.12 s each take ~2 s), yet each fits inside the 3 s lease even queued behind the
    # others.
    slow = {"text": "in flight", "sleep_s": 0.12}
    ids = [platform.submit("test.echo.short", slow) for _ in range(16)]
    wait_for(
        lambda: sum(platform.statuses(ids).values()) == len(ids),
        timeout=30,
        what="every goal to be recorded",
    )
    # Goals accepted over HTTP right before the crash: their events may never be consumed.
    ids += [_post(api, slow) for _ in range(4)]
    assert platform.statuses(ids).get("completed", 0) < len(ids) - 4, "too late to crash"

    assert own_broker.process is not None
    own_broker.process.send_signal(signal.SIGKILL)
    own_broker.process.wait(10)
    own_broker.start()  # same port, empty memory: no topics, no offsets, no groups

    wait_for(
        lambda: platform.statuses(ids).get("completed", 0) == len(ids),
        timeout=120,
        what="every workflow to complete after the restart",
    )
    for workflow_id in ids:
        state = platform.workflow(workflow_id)
        assert state is not None
        outcomes = [a.outcome for a in state.tasks["echo"].attempts]
        assert outcomes.count("completed") == 1, (workflow_id, outcomes)
    api.close()


def _ready(api: httpx.Client) -> bool:
    try:
        return api.get("/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def _post(api: httpx.Client, goal_input: dict[str, object]) -> str:
    response = api.post("/api/v1/goals", json={"type": "test.echo.short", "input": goal_input})
    assert response.status_code == 202, response.text
    return str(response.json()["workflow_id"])
