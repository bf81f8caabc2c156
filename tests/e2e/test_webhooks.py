"""Signed webhooks end to end on real processes: a GitHub-style delivery to `waypost serve`
becomes a workflow that the orchestrator and an agent complete; the same delivery sent
again finds that workflow and starts no other.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from tests.e2e.conftest import Platform
from tests.waiting import wait_for
from waypost.stack.process import free_port
from waypost.triggers.signatures import github_signature

pytestmark = pytest.mark.e2e

SECRET = "e2e-github-secret"
HOOKS = """\
hooks:
  github:
    secret: ${E2E_GITHUB_HOOK_SECRET}
    scheme: github
    goal: {type: test.echo, input: {text: "${/issue/title}"}}
"""


@pytest.mark.slow  # 10-20 s (three processes): `make test-slow` (CI runs it)
def test_a_signed_delivery_completes_a_workflow_and_its_replay_starts_none(
    platform: Platform, tmp_path: Path
) -> None:
    hook_dir = tmp_path / "hooks"
    hook_dir.mkdir()
    (hook_dir / "github.yaml").write_text(HOOKS)
    port = free_port()
    platform.env_overrides.update(
        {
            "WAYPOST_HOOK_DIRS": str(hook_dir),
            "WAYPOST_HTTP_PORT": str(port),
            "E2E_GITHUB_HOOK_SECRET": SECRET,
        }
    )
    platform.start_orchestrator()
    platform.start_agents()
    platform.start("http", "serve")
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(ready, timeout=60, what="the HTTP app")
    body = json.dumps({"action": "opened", "issue": {"title": "from a webhook"}}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": "e2e-delivery-1",
        "X-Hub-Signature-256": github_signature(SECRET.encode(), body),
    }

    first = httpx.post(f"{base}/hooks/github", content=body, headers=headers, timeout=10)
    assert first.status_code == 202, first.text
    workflow_id = first.json()["workflow_id"]
    wait_for(
        lambda: platform.statuses([workflow_id]) == {"completed": 1},
        timeout=60,
        what="the webhook's workflow to complete",
    )
    state = platform.workflow(workflow_id)
    assert state is not None
    assert state.tasks["echo"].output == {"text": "from a webhook", "attempt": 1}

    again = httpx.post(f"{base}/hooks/github", content=body, headers=headers, timeout=10)
    assert again.status_code == 200, again.text
    assert again.json() == {**first.json(), "duplicate": True}
    with platform.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM workflows")).scalar_one() == 1
