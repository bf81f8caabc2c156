"""Every metric Waypost exports is documented, and the dashboard uses only real ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from orchestrator.dead_letters.indexer import indexed_counter
from orchestrator.quality.metrics import families as quality_families
from orchestrator.service.metrics import OrchestratorMetrics, _families
from orchestrator.store.gauges import Snapshot
from review_ui.metrics import HttpMetrics
from waypost.runtime.metrics import AgentMetrics
from waypost.tools.metrics import ToolMetrics

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "observability.md").read_text()
DASHBOARD = json.loads((ROOT / "helm" / "waypost" / "dashboards" / "waypost.json").read_text())


def exported() -> dict[str, set[str]]:
    """Each metric's exposed name (counters with _total) and its sample names."""
    registry = CollectorRegistry()
    OrchestratorMetrics(registry)
    AgentMetrics(registry)
    ToolMetrics(registry)
    HttpMetrics(registry)
    indexed_counter(registry)
    names: dict[str, set[str]] = {}
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        suffixes = ("_bucket", "_count", "_sum") if family.type == "histogram" else ("",)
        names[name] = {family.name + s for s in suffixes} if family.type == "histogram" else {name}
    snapshot = Snapshot(1, {("c", "dispatched"): 1}, {("c", "lt_5m"): 1}, {"c": "open"},
                        {"a": (1, 1.0)}, {("t.dlq", "E", "pending"): 1})  # fmt: skip
    for family in _families(snapshot):
        names[family.name] = {family.name}
    for family in quality_families({}, {}):
        names[family.name] = {family.name}
    names["waypost_store_up"] = {"waypost_store_up"}
    return names


def test_every_metric_is_named_with_the_prefix_and_documented() -> None:
    metrics = exported()
    assert len(metrics) >= 25
    documented = set(re.findall(r"^\| `(waypost_\w+)`", DOC, flags=re.MULTILINE))
    assert documented == set(metrics), "docs/observability.md's metric table is out of date"


def test_the_dashboard_queries_only_metrics_that_exist() -> None:
    samples = {sample for names in exported().values() for sample in names}
    queries = [
        target["expr"] for panel in DASHBOARD["panels"] for target in panel.get("targets", [])
    ]
    used = {name for query in queries for name in re.findall(r"\bwaypost_\w+", query)}
    assert used, "the dashboard has no queries"
    assert used <= samples, f"unknown metrics in the dashboard: {sorted(used - samples)}"
    # It covers what the issue asks for: throughput, latency, backlog, escalations,
    # dead letters and budgets.
    titles = {panel["title"] for panel in DASHBOARD["panels"] if panel["type"] == "row"}
    assert titles == {
        "Throughput",
        "Latency",
        "Backlog",
        "Escalations",
        "Dead letters",
        "Agents, budgets and breakers",
    }
