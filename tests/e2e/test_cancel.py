"""Cancelling a workflow while its agent is running the task, end to end: a real
orchestrator, agent worker and HTTP app on the real broker and PostgreSQL, cancelled
with `waypost workflow cancel`. The workflow ends cancelled at once, `workflow.cancelled`
reaches the workflow events topic and the agent worker (which sets the handler's
`ctx.cancellation`), and the result this handler, which sleeps without looking at it,
publishes when it finishes anyway changes nothing. A handler that waits on
`ctx.cancellation` is in tests/waypost/runtime/test_cancellation_kafka.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, Platform
from tests.e2e.reviewing import serving, submit
from tests.waiting import wait_for
from waypost.events import WorkflowCancelled, default_codec

pytestmark = pytest.mark.e2e


@pytest.mark.slow  # several seconds of broker or browser time: make test-slow
def test_a_running_task_of_a_cancelled_workflow_has_its_late_result_ignored(
    platform: Platform, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    with serving(platform, ["tests.support.agents"]) as api:
        env = {
            **os.environ,
            "WAYPOST_API_TOKEN": api.headers["Authorization"].removeprefix("Bearer "),
            "WAYPOST_HTTP_URL": str(api.base_url),
        }

        def waypost(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "waypost", *args],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
            )

        workflow_id = submit(
            api, "test.echo", {"text": "slow", "sleep_s": 3, "marker_dir": str(markers)}
        )
        wait_for(lambda: list(markers.iterdir()), timeout=30, what="the handler to start")

        cancelled = waypost("workflow", "cancel", workflow_id, "--reason", "no longer needed")

        assert cancelled.returncode == 0, cancelled.stderr
        state = api.get(f"/api/v1/workflows/{workflow_id}").json()
        assert state["status"] == "cancelled"
        assert [(t["step"], t["status"]) for t in state["tasks"]] == [("echo", "cancelled")]
        # Announced on the workflow events topic, naming the attempt that was running.
        announced = [
            default_codec().decode(r.value, r.headers)
            for r in platform.read_topic(platform.topics.workflow_events, expect=2)
        ]
        assert [e.type for e in announced] == ["workflow.started", "workflow.cancelled"]
        payload = announced[1].payload
        assert isinstance(payload, WorkflowCancelled)
        assert (payload.workflow_id, payload.cancelled_by) == (workflow_id, "test-admin")
        assert [(t.step, t.attempt) for t in payload.tasks] == [("echo", 1)]
        # The agent worker heard it too.
        told = f"workflow {workflow_id} cancelled by test-admin: 1 attempt(s) told to stop"
        agents_log = platform.logs / "agents.log"
        wait_for(
            lambda: told in agents_log.read_text(errors="replace"),
            timeout=20,
            what="the agent worker to hear of the cancellation",
        )
        # The handler finishes anyway and publishes its result ...
        (result,) = platform.read_topic(platform.topics.results, expect=1, timeout_s=30)
        assert dict(result.headers)["ce_type"] == b"waypost.task.completed"
        # ... which the orchestrator reads and does not apply.
        log = platform.logs / "orchestrator.log"
        wait_for(
            lambda: (
                f"not applied: {workflow_id}: workflow already cancelled"
                in log.read_text(errors="replace")
            ),
            timeout=20,
            what="the orchestrator to ignore the late result",
        )
        assert api.get(f"/api/v1/workflows/{workflow_id}").json() == state
        again = waypost("workflow", "cancel", workflow_id, "--reason", "twice")
        assert again.returncode == 1
        assert f"error: workflow {workflow_id} is already cancelled" in again.stderr
        unknown = waypost("workflow", "cancel", "nobody", "--reason", "x")
        assert unknown.returncode == 1
        assert "no workflow 'nobody'" in unknown.stderr
    assert len(list(markers.iterdir())) == 1  # it ran once; nothing was dispatched again
