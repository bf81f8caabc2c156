"""Prometheus metrics of the running processes, scraped by a real Prometheus.

The test runs a known workload (echo tasks that complete, one that fails for good and is
dead-lettered, an onboarding that waits for a reviewer), lets a real Prometheus (the
Debian package) scrape the orchestrator, the agent worker, the indexer and the HTTP app,
and checks that PromQL answers what the test did. Every /metrics output passes
`promtool check metrics`, and every query of the Grafana dashboard evaluates.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.workflow.state import WorkflowStatus
from tests.e2e.conftest import ROOT, Platform
from tests.e2e.reviewing import escalation_of, finished, serving, submit
from tests.waiting import wait_for
from waypost.stack.demo import SAMPLE_HIRES
from waypost.stack.process import free_port, spawn, stop

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("prometheus") is None or shutil.which("promtool") is None,
        reason="needs Debian's prometheus package (.ci/run installs it)",
    ),
]

DASHBOARD = ROOT / "helm" / "waypost" / "dashboards" / "waypost.json"


class Prometheus:
    """A real Prometheus server scraping the given targets every second."""

    def __init__(self, targets: dict[str, str], workdir: Path) -> None:
        port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "waypost",
                            "static_configs": [
                                {"targets": [address], "labels": {"process": name}}
                                for name, address in targets.items()
                            ],
                        }
                    ],
                }
            )
        )
        self.url = f"http://127.0.0.1:{port}"
        with (workdir / "prometheus.log").open("ab") as log:
            self.process = spawn(
                [
                    "prometheus",
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                log=log,
            )
        self.http = httpx.Client(base_url=self.url, timeout=5)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector ``promql`` evaluates to (fails on a query error)."""
        response = self.http.get("/api/v1/query", params={"query": promql})
        body = response.json()
        assert body["status"] == "success", f"{promql}: {body.get('error')}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, promql: str) -> float | None:
        """The single value of ``promql`` (None if it has no series)."""
        result = self.query(promql)
        assert len(result) <= 1, f"{promql} has {len(result)} series"
        return float(result[0]["value"][1]) if result else None

    def ready(self) -> bool:
        """True once it answers queries."""
        try:
            return self.http.get("/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def close(self) -> None:
        """Stop it by PID."""
        self.http.close()
        stop(self.process, timeout=10)


@pytest.fixture
def stack(platform: Platform) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """Orchestrator, agents (echo and onboarding), indexer and HTTP app, with the
    address of every process's /metrics."""
    ports = {"orchestrator": free_port(), "agents": free_port(), "indexer": free_port()}
    with serving(
        platform, ("tests.support.agents", "agents.onboarding"), metrics_ports=ports
    ) as client:
        platform.start("indexer", "indexer", "run", metrics_port=ports["indexer"])
        targets = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
        targets["http"] = str(client.base_url).removeprefix("http://").rstrip("/")
        yield client, targets


@pytest.fixture
def prometheus(stack: tuple[httpx.Client, dict[str, str]], tmp_path: Path) -> Iterator[Prometheus]:
    """Prometheus scraping the stack."""
    server = Prometheus(stack[1], tmp_path)
    try:
        wait_for(server.ready, timeout=60, interval=0.2, what="Prometheus to be ready")
        yield server
    finally:
        server.close()


def test_promql_answers_what_the_workload_did(
    platform: Platform, stack: tuple[httpx.Client, dict[str, str]], prometheus: Prometheus
) -> None:
    api, targets = stack
    ns = platform.namespace
    done = [submit(api, "test.echo", {"text": f"hello {n}"}) for n in range(4)]
    broken = submit(api, "test.echo", {"text": "no", "fail": "permanent"})
    waiting = submit(api, "employee.onboarding", SAMPLE_HIRES[0])
    for workflow_id in done:
        assert finished(platform, workflow_id).status is WorkflowStatus.COMPLETED
    assert finished(platform, broken).status is WorkflowStatus.FAILED
    escalation_of(api, waiting)

    every_target_up = f'sum(up{{job="waypost"}}) == {len(targets)}'
    wait_for(lambda: prometheus.query(every_target_up), timeout=30, what="every target up")
    expected = {
        'sum(waypost_tasks_completed_total{capability="echo"})': 4,
        'sum(waypost_tasks_failed_total{capability="echo"})': 1,
        'sum(waypost_tasks_dead_lettered_total{capability="echo"})': 1,
        'sum(waypost_agent_tasks_total{capability="echo",outcome="completed"})': 4,
        'sum(waypost_agent_tasks_total{capability="echo",outcome="failed"})': 1,
        'sum(waypost_workflow_duration_seconds_count{type="test.echo",outcome="completed"})': 4,
        'sum(waypost_workflow_duration_seconds_count{type="test.echo",outcome="failed"})': 1,
        'sum(waypost_tasks_dispatched_total{capability="echo"})': 5,
        'sum(waypost_escalations_pending{capability="payroll.setup",age_bucket="lt_5m"})': 1,
        'sum(waypost_escalations_opened_total{capability="payroll.setup",kind="approval"})': 1,
        'sum(waypost_capability_backlog_tasks{capability="echo"}) or vector(0)': 0,
        f'sum(waypost_dead_letters_indexed_total{{topic="{ns}.tasks.echo.dlq"}})': 1,
        f'sum(waypost_dead_letters{{topic="{ns}.tasks.echo.dlq",status="pending"}})': 1,
        'sum(waypost_http_requests_total{method="POST",route="/api/v1/goals",status="202"})': 6,
        "sum(waypost_store_up)": 1,
    }

    def answers() -> dict[str, float | None]:
        return {query: prometheus.value(query) for query in expected}

    last: dict[str, float | None] = {}

    def matches() -> bool:
        last.update(answers())
        return last == {query: float(value) for query, value in expected.items()}

    try:
        wait_for(matches, timeout=30, interval=0.5, what="PromQL to match the workload")
    except AssertionError:
        wrong = {q: (v, expected[q]) for q, v in last.items() if v != expected[q]}
        http = prometheus.query("waypost_http_requests_total")
        raise AssertionError(f"PromQL (got, expected): {wrong}; {http}") from None
    # Histograms count what the counters count, per capability.
    assert prometheus.value(
        'sum(waypost_task_duration_seconds_count{capability="echo"})'
    ) == pytest.approx(5)


def test_every_metrics_output_passes_promtool(
    stack: tuple[httpx.Client, dict[str, str]],
) -> None:
    api, targets = stack
    submit(api, "test.echo", {"text": "one"})  # so that labelled series exist
    for name, address in targets.items():
        # A service serves /metrics before it registers its own series (the indexer
        # once it has connected): wait for them rather than for the endpoint alone.
        text = wait_for(
            lambda address=address: _with_waypost_series(_metrics(address)),
            timeout=30,
            interval=0.2,
            what=f"waypost_ series on /metrics of {name}",
        )
        assert "waypost_" in text, name
        checked = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
        )
        assert checked.returncode == 0, f"{name}: {checked.stdout}{checked.stderr}"


def test_every_dashboard_query_evaluates(prometheus: Prometheus) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    assert len(queries) >= 10
    for query in queries:
        # Grafana's $__rate_interval is not PromQL: give it a value, as Grafana would.
        prometheus.query(query.replace("$__rate_interval", "1m"))


def _metrics(address: str) -> str | None:
    try:
        response = httpx.get(f"http://{address}/metrics", timeout=5)
    except httpx.TransportError:
        return None
    return response.text if response.status_code == 200 else None


def _with_waypost_series(text: str | None) -> str | None:
    """The exposition text once it holds Waypost's own series, else None (wait on)."""
    return text if text is not None and "waypost_" in text else None
