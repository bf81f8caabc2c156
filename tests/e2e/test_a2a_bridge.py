"""The A2A bridge end to end: real orchestrator, `waypost a2a bridge` and HTTP processes
on the real broker and PostgreSQL, with an ``a2a-sdk`` server (AgentExecutor +
DefaultRequestHandler + its Starlette routes, on uvicorn) as the remote agent of the
bridged step. It completes with the remote output; a remote failure is retried, then
fails the workflow; a remote question becomes an escalation whose approval is sent back,
exactly once, and the remote agent then completes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orchestrator.workflow.state import WorkflowStatus
from tests.e2e.conftest import PLAYBOOKS, ROOT, Platform
from tests.e2e.reviewing import decide, escalation_of, finished
from tests.waiting import wait_for
from tests.waypost.a2a.remote_agent import TOKEN, RemoteServer, serving_remote
from waypost.stack.process import free_port

pytestmark = pytest.mark.e2e

E2E_PLAYBOOKS = ROOT / "tests" / "e2e" / "playbooks"


@pytest.fixture
def remote() -> Iterator[RemoteServer]:
    with serving_remote() as server:
        yield server


@pytest.fixture
def api(platform: Platform, remote: RemoteServer, tmp_path: Path) -> Iterator[httpx.Client]:
    """Orchestrator, the bridge worker (bridging ``refunds`` to the remote agent) and
    `waypost serve`; a client with an admin token."""
    bridges = tmp_path / "bridges.yaml"
    bridges.write_text(
        "bridges:\n"
        "  refunds:\n"
        f"    card: {remote.url}\n"
        "    skill: refund\n"
        "    agent: refund-desk\n"
        '    headers: {Authorization: "Bearer ${REMOTE_TOKEN}"}\n'
        "    poll_interval: 100ms\n"
    )
    port = free_port()
    platform.env_overrides.update(
        {
            "WAYPOST_PLAYBOOK_DIRS": f"{PLAYBOOKS},{E2E_PLAYBOOKS}",
            "WAYPOST_HTTP_PORT": str(port),
            "REMOTE_TOKEN": TOKEN,
        }
    )
    platform.start_orchestrator()
    platform.start("bridge", "a2a", "bridge", "--config", str(bridges))
    platform.start("http", "serve")
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {platform.api_token()}"},
        timeout=10,
    ) as client:

        def ready() -> bool:
            try:
                return client.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout=60, interval=0.2, what="the HTTP app to be ready")
        yield client


def test_a_bridged_step_completes_fails_and_asks_a_reviewer(
    platform: Platform, api: httpx.Client, remote: RemoteServer
) -> None:
    completed_id = platform.submit("test.a2a_bridge", {"mode": "echo", "amount": 1})
    failing_id = platform.submit("test.a2a_bridge", {"mode": "fail", "amount": 2})
    asking_id = platform.submit("test.a2a_bridge", {"mode": "ask", "amount": 12})

    completed = finished(platform, completed_id)
    assert completed.status is WorkflowStatus.COMPLETED
    assert completed.output == {"refund": {"echo": {"mode": "echo", "amount": 1}, "count": 3}}

    failed = finished(platform, failing_id)
    assert failed.status is WorkflowStatus.FAILED
    assert failed.error is not None
    assert failed.error.type == "RemoteFailed"
    assert "failed task" in failed.error.message
    assert "the ledger is down" in failed.error.message
    # Retried once (retries: 1), each attempt a remote task of its own.
    fail_tasks = [t for t in remote.received.tasks() if remote.received.of(t)[0]["mode"] == "fail"]
    assert len(fail_tasks) == 2

    escalation = escalation_of(api, asking_id)
    assert escalation["kind"] == "policy_approval"
    assert escalation["reason"] == "remote agent 'refund-desk' asks for input: May I refund 12 EUR?"
    assert escalation["content"]["proposed_action"]["name"] == "a2a:refund-desk/refund/input"
    [ask_task] = [t for t in remote.received.tasks() if remote.received.of(t)[0]["mode"] == "ask"]
    assert len(remote.received.of(ask_task)) == 1  # nothing sent back before the decision

    decide(api, escalation, "approve")

    asked = finished(platform, asking_id)
    assert asked.status is WorkflowStatus.COMPLETED
    assert asked.output is not None
    assert asked.output["refund"]["refunded"] == 12
    reviewer = asked.output["refund"]["approved_by"]
    assert reviewer
    assert remote.received.of(ask_task)[1:] == [
        {"decision": "approve", "approved_by": reviewer, "escalation_id": escalation["id"]}
    ]
    assert len(remote.received.tasks()) == 4  # no remote task was started twice
    assert all(header == f"Bearer {TOKEN}" for header in remote.received.headers)
