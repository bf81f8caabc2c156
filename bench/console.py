"""Review console latency with 10,000 pending escalations and 1,000,000 workflows.

Seeds the escalations through the real orchestrator code (planning, an agent result
that needs approval, the applier writing rows, embeddings and audit entries), serves
the HTTP app with uvicorn, and measures over HTTP:

- the inbox's first page (GET /inbox, as a reviewer's browser asks for it),
- a filtered inbox page (goal type, priority and SLA state),
- decision POSTs (POST /api/v1/escalations/{id}/decision, each on another escalation),
- and, as the floor of this HTTP stack, GET /healthz.

Then, in a schema of their own, a million workflows bulk-loaded with COPY
(bench/workflow_rows.py: indexes built after the load), and over HTTP:

- the workflow list's first page (GET /workflows: the page with its counts per status),
- a filtered page (status, goal type and the last 30 days),
- a deep page (a cursor 900,000 rows in),
- a text search in the goal inputs (a word about one workflow in a thousand has),
- the counts per status alone (GET /api/v1/workflows?counts=true),
- one workflow (GET /api/v1/workflows/{id}, and its console page).

Goals: inbox and every workflow measurement p95 under 100 ms, decision p95 under
300 ms. ``--workflows 0`` skips the workflows. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import httpx
import uvicorn

from bench import workflow_rows as bulk
from bench.harness import Stack, embedded_stack, migrate_schema, unique
from orchestrator.playbooks.loader import load_text
from orchestrator.playbooks.registry import PlaybookRegistry
from orchestrator.publishing.records import Outgoing
from orchestrator.service.applier import Applier
from orchestrator.store import workflows as workflow_rows
from orchestrator.store.workflow_pages import Cursor
from orchestrator.store.workflows import NewWorkflow
from orchestrator.workflow.machine import task_id
from orchestrator.workflow.messages import TaskSucceeded
from review_ui.app import create_app
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from waypost.bus.kafka import KafkaBus
from waypost.db import make_engine
from waypost.events import default_codec, utcnow
from waypost.settings import HttpSettings
from waypost.stack.process import free_port
from waypost.topics import Topics

PLAYBOOK = """
type: bench.review
steps:
  - name: draft
    capability: bench-draft
    requires_approval: true
    review: {group: support, sla: 4h, warn_before: 1h}
"""
SUBJECTS = [
    "Charged twice",
    "Cannot log in",
    "Parcel late",
    "Refund please",
    "App crashes",
    "Change my plan",
    "Invoice missing",
    "Password reset loop",
]


def seed(stack: Stack, schema: str, namespace: str, count: int) -> None:
    """``count`` workflows, each with one pending escalation, of mixed priority and age."""
    engine = make_engine(stack.database_url, schema=schema)
    playbooks = PlaybookRegistry([load_text(PLAYBOOK, source="bench.review.yaml")])
    applier = Applier(
        playbooks=playbooks,
        outgoing=Outgoing(Topics(namespace), default_codec()),
        random=random.Random(1).random,
    )
    rng = random.Random(2)
    now = utcnow()
    batch = 500
    for start in range(0, count, batch):
        ids = [f"bench-{n:06d}" for n in range(start, min(count, start + batch))]
        # Spread over the last 6 hours: some are near their deadline or past it.
        opened = now - timedelta(minutes=rng.uniform(0, 360))
        goals = [
            NewWorkflow(
                wid,
                "bench.review",
                {"subject": f"{rng.choice(SUBJECTS)} #{wid[-6:]}", "body": "Please help."},
                opened,
            )
            for wid in ids
        ]
        with engine.begin() as conn:
            applier.plan_new(conn, goals=goals, now=opened)
        results = [
            (wid, TaskSucceeded(task_id(wid, "draft"), 1, {"text": f"Draft for {wid}"}, 0.5))
            for wid in ids
        ]
        with engine.begin() as conn:
            states = workflow_rows.lock(conn, ids=ids)
            applier.apply(conn, states=states, inputs=results, now=opened)
            conn.exec_driver_sql(
                "UPDATE escalations SET priority = 1 + (abs(hashtext(id)) %% 5) "
                "WHERE workflow_id = ANY(%(ids)s)",
                {"ids": ids},
            )
        print(f"  seeded {min(count, start + batch)}/{count}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    engine.dispose()


def serve(stack: Stack, schema: str, namespace: str) -> tuple[str, str, Callable[[], None]]:
    """Run the HTTP app in this process; returns (base URL, admin token, stop)."""
    settings = HttpSettings(
        kafka_bootstrap=stack.bootstrap,
        database_url=stack.database_url,
        database_schema=schema,
        namespace=namespace,
        http_port=free_port(),
    )
    engine = make_engine(stack.database_url, schema=schema, pool_size=10)
    with engine.begin() as conn:
        token, _ = auth_store.create_token(conn, name="bench", role=Role.ADMIN)
    app = create_app(
        settings,
        engine=engine,
        admin=KafkaBus(stack.bootstrap, settings).admin(),
        playbooks=PlaybookRegistry([load_text(PLAYBOOK, source="bench.review.yaml")]),
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.http_port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{settings.http_port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the HTTP app did not start")
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)
        engine.dispose()

    return base, token, stop


def timings(action: Callable[[], httpx.Response], count: int) -> list[float]:
    """Milliseconds per call; every response must be a success."""
    spent = []
    for _ in range(count):
        started = time.perf_counter()
        response = action()
        spent.append((time.perf_counter() - started) * 1000)
        if response.status_code >= 400:
            raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    return spent


def p95(values: list[float]) -> float:
    """The 95th percentile."""
    return statistics.quantiles(values, n=20)[-1]


def measure_workflows(stack: Stack, count: int, requests: int) -> dict[str, list[float]]:
    """Milliseconds per request of each workflow measurement, with ``count`` workflows
    bulk-loaded into a schema of their own."""
    schema, namespace = unique("bench_"), unique("bench")
    migrate_schema(stack, schema)
    engine = make_engine(stack.database_url, schema=schema, pool_size=1)
    loaded = bulk.load(engine, count=count, now=utcnow())
    with engine.connect() as conn:  # once, to find where the deep page starts: OFFSET
        deep = conn.exec_driver_sql(
            "SELECT accepted_at, id FROM workflows ORDER BY accepted_at DESC, id DESC "
            "OFFSET %(skip)s LIMIT 1",
            {"skip": count * 9 // 10},
        ).one()
    engine.dispose()
    base, token, stop = serve(stack, schema, namespace)
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
    pages: dict[str, dict[str, str]] = {
        "workflows_first_page": {},
        "workflows_filtered": {
            "status": "failed",
            "type": loaded.failed_type,
            "accepted_since": "30d",
        },
        "workflows_deep_page": {"cursor": Cursor(deep.accepted_at, deep.id).encode()},
        "workflows_text_search": {"text": loaded.rare_word},
    }
    ids = iter(loaded.with_tasks * (1 + 2 * requests // max(len(loaded.with_tasks), 1)))
    try:
        for params in pages.values():  # every page has rows to show
            if 'class="wf-row"' not in client.get("/workflows", params=params).text:
                raise RuntimeError(f"no workflow listed for {params}")
        for _ in range(10):  # warm-up: connections, prepared statements
            client.get("/workflows")

        def listing(params: dict[str, str]) -> Callable[[], httpx.Response]:
            return lambda: client.get("/workflows", params=params)

        found = {name: timings(listing(params), requests) for name, params in pages.items()}
        found["workflows_counts"] = timings(
            lambda: client.get("/api/v1/workflows", params={"limit": 1, "counts": "true"}),
            requests,
        )
        found["workflow_get"] = timings(
            lambda: client.get(f"/api/v1/workflows/{next(ids)}"), requests
        )
        found["workflow_page"] = timings(lambda: client.get(f"/workflows/{next(ids)}"), requests)
    finally:
        client.close()
        stop()
    return found


def main() -> None:
    """Seed, serve, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--escalations", type=int, default=10_000)
    parser.add_argument("--workflows", type=int, default=1_000_000, help="0: skip them")
    parser.add_argument("--requests", type=int, default=200, help="per measurement")
    args = parser.parse_args()
    with embedded_stack() as stack:
        schema, namespace = unique("bench_"), unique("bench")
        migrate_schema(stack, schema)
        started = time.monotonic()
        seed(stack, schema, namespace, args.escalations)
        print(
            f"seeded {args.escalations} escalations in {time.monotonic() - started:.1f} s",
            file=sys.stderr,
        )
        base, token, stop = serve(stack, schema, namespace)
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        try:
            pending = client.get("/api/v1/escalations", params={"page_size": 200}).json()
            if pending["total"] < args.escalations:
                raise RuntimeError(f"only {pending['total']} escalations are pending")
            for _ in range(10):  # warm-up: connections, prepared statements
                client.get("/inbox")
            first = timings(lambda: client.get("/inbox"), args.requests)
            filtered = timings(
                lambda: client.get(
                    "/inbox", params={"goal_type": "bench.review", "priority": 2, "sla": "ok"}
                ),
                args.requests,
            )
            floor = timings(lambda: client.get("/healthz"), args.requests)
            targets = iter(
                client.get("/api/v1/escalations", params={"page_size": 200, "page": page}).json()[
                    "items"
                ]
                for page in range(2, 2 + -(-args.requests // 200))
            )
            queue = [item for page in targets for item in page]

            def decide() -> httpx.Response:
                item = queue.pop()
                return client.post(
                    f"/api/v1/escalations/{item['id']}/decision",
                    json={
                        "action": "approve",
                        "version": item["version"],
                        "digest": item["digest"],
                    },
                )

            decisions = timings(decide, args.requests)
        finally:
            client.close()
            stop()
        listing = measure_workflows(stack, args.workflows, args.requests) if args.workflows else {}
    result: dict[str, object] = {
        "pending": args.escalations,
        "inbox_first_page_p95_ms": round(p95(first), 1),
        "inbox_filtered_p95_ms": round(p95(filtered), 1),
        "decision_post_p95_ms": round(p95(decisions), 1),
        "healthz_p95_ms": round(p95(floor), 1),
        "inbox_first_page_p50_ms": round(statistics.median(first), 1),
        "decision_post_p50_ms": round(statistics.median(decisions), 1),
    }
    for name, spent in listing.items():
        result[f"{name}_p50_ms"] = round(statistics.median(spent), 1)
        result[f"{name}_p95_ms"] = round(p95(spent), 1)
    result["workflows"] = args.workflows
    result["goals_met"] = (
        p95(first) < 100
        and p95(filtered) < 100
        and p95(decisions) < 300
        and all(p95(spent) < 100 for spent in listing.values())
    )
    for name in ("inbox_first_page", "inbox_filtered", "decision_post", "healthz", *listing):
        p50 = f"p50 {result[name + '_p50_ms']} ms, " if name + "_p50_ms" in result else ""
        print(f"{name}: {p50}p95 {result[name + '_p95_ms']} ms", file=sys.stderr)
    verdict = "met" if result["goals_met"] else "NOT met"
    print(f"goals (p95 under 100 ms; decisions under 300 ms): {verdict}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
