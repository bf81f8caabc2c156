"""Waypost as an MCP server, driven by the official `mcp` SDK client: over real HTTP
against the app under uvicorn (``/mcp``), and over real stdio against `waypost mcp
serve`, on the real PostgreSQL. Escalations are opened by the review harness, the way
the orchestrator opens them.

The goal-to-completion path with a running orchestrator and agents is
tests/e2e/test_mcp_server.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import pytest
import uvicorn
from fastapi import FastAPI
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent, TextResourceContents
from sqlalchemy import Engine, select

from orchestrator.store.tables import audit_events, workflows
from orchestrator.workflow.state import EscalationStatus
from review_ui.app import create_app
from review_ui.auth import store as auth_store
from review_ui.auth.roles import Role
from tests.orchestrator.test_reviews import ReviewHarness
from tests.waiting import wait_for
from waypost.bus.kafka import KafkaBus
from waypost.settings import HttpSettings
from waypost.stack.broker import EmbeddedBroker
from waypost.stack.process import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
# Who calls, by the token's name: the audit rows must carry these names.
NAMES = {"admin": "ada-mcp", "reviewer": "rita-mcp", "analyst": "ann-mcp"}


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run an async client in this (sync) test."""
    return anyio.run(main)


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn on a free port (its lifespan runs the MCP session manager)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="http", daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=30, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def url(review_app: FastAPI) -> Iterator[str]:
    """The review app's URL."""
    with serving(review_app) as found:
        yield found


@pytest.fixture
def tokens(engine: Engine) -> dict[str, str]:
    """A bearer token per role."""
    found = {}
    with engine.begin() as conn:
        for role, name in NAMES.items():
            found[role], _ = auth_store.create_token(conn, name=name, role=Role(role))
    return found


@asynccontextmanager
async def connected(url: str, token: str) -> AsyncIterator[ClientSession]:
    """An initialized SDK client session on ``/mcp`` with this bearer token."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def call(url: str, token: str, tool: str, **arguments: Any) -> CallToolResult:
    """One tool call in a session of its own."""

    async def main() -> CallToolResult:
        async with connected(url, token) as session:
            return await session.call_tool(tool, arguments)

    return run(main)


def text_of(result: CallToolResult) -> str:
    """The text of a tool result's content."""
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


def audit_rows(engine: Engine, action: str) -> list[Any]:
    """The audit rows of one action, oldest first."""
    with engine.connect() as conn:
        query = select(audit_events).where(audit_events.c.action == action)
        return list(conn.execute(query.order_by(audit_events.c.id)).all())


def mcp_calls(engine: Engine, tool: str) -> list[tuple[str, str, str]]:
    """(actor, transport, outcome) of each audited call of ``tool``."""
    return [
        (row.actor, row.detail["transport"], row.detail["outcome"])
        for row in audit_rows(engine, "mcp_call")
        if row.detail["tool"] == tool
    ]


# --- authentication ---------------------------------------------------------------------------

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "curl", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def test_without_a_token_it_is_401_before_any_mcp_processing(
    url: str, tokens: dict[str, str], engine: Engine
) -> None:
    session = {"Cookie": "waypost_session=anything"}
    for headers, challenge in (
        ({}, "Bearer"),
        (session, "Bearer"),  # a console session is not a credential here
        ({"Authorization": "Basic YWRhOnB3"}, "Bearer"),
        ({"Authorization": "Bearer wp_not-a-token"}, 'Bearer error="invalid_token"'),
    ):
        response = httpx.post(f"{url}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, **headers})

        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == challenge
        assert response.headers["content-type"] == "application/problem+json"
        assert "jsonrpc" not in response.json()  # the SDK never saw it
    accepted = httpx.post(
        f"{url}/mcp",
        json=INITIALIZE,
        headers={**MCP_HEADERS, "Authorization": f"Bearer {tokens['reviewer']}"},
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["result"]["serverInfo"]["name"] == "waypost"
    assert audit_rows(engine, "mcp_call") == []  # initializing is not a call


def test_a_client_with_too_many_bad_tokens_gets_429_even_with_a_good_one(
    make_settings: Callable[..., Any],
    engine: Engine,
    broker: EmbeddedBroker,
    review_harness: ReviewHarness,
    tokens: dict[str, str],
) -> None:
    settings = make_settings(
        HttpSettings, throttle_client_delay_after=3, throttle_client_lock_after=3
    )
    app = create_app(
        settings,
        engine=engine,
        admin=KafkaBus(broker.bootstrap, settings).admin(),
        playbooks=review_harness.playbooks,
    )
    with serving(app) as url:
        for n in range(3):
            bad = {**MCP_HEADERS, "Authorization": f"Bearer wp_guess{n}"}
            assert httpx.post(f"{url}/mcp", json=INITIALIZE, headers=bad).status_code == 401
        good = {**MCP_HEADERS, "Authorization": f"Bearer {tokens['admin']}"}
        refused = httpx.post(f"{url}/mcp", json=INITIALIZE, headers=good)

    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert refused.headers["content-type"] == "application/problem+json"


def test_the_endpoint_is_not_in_the_openapi_document(url: str) -> None:
    document = httpx.get(f"{url}/api/v1/openapi.json").json()

    assert not [path for path in document["paths"] if "mcp" in path]


# --- tools ------------------------------------------------------------------------------------


def test_the_tools_and_resources_are_listed_with_their_schemas(
    url: str, tokens: dict[str, str]
) -> None:
    async def main() -> tuple[Any, Any, Any]:
        async with connected(url, tokens["analyst"]) as session:
            return (
                await session.list_tools(),
                await session.list_resources(),
                await session.list_resource_templates(),
            )

    tools, resources, templates = run(main)

    by_name = {tool.name: tool for tool in tools.tools}
    assert set(by_name) >= {
        "submit_goal",
        "get_workflow",
        "list_workflows",
        "list_escalations",
        "get_escalation",
        "decide_escalation",
        "list_dead_letters",
        "get_dead_letter",
    }
    decide = by_name["decide_escalation"]
    assert set(decide.input_schema["required"]) == {"escalation_id", "action", "version", "digest"}
    assert decide.output_schema is not None
    assert "decision_id" in decide.output_schema["properties"]
    assert decide.annotations is not None
    assert decide.annotations.destructive_hint  # clients ask a person before deciding
    for name in ("get_workflow", "list_escalations", "get_dead_letter"):
        annotations = by_name[name].annotations
        assert annotations is not None
        assert annotations.read_only_hint
    assert set(by_name["submit_goal"].input_schema["required"]) == {"type", "input"}
    assert [str(r.uri) for r in resources.resources] == ["waypost://playbooks"]
    assert {t.uri_template for t in templates.resource_templates} == {
        "waypost://playbooks/{goal_type}",
        "waypost://workflows/{workflow_id}",
    }


def test_an_admin_submits_a_goal_and_follows_its_workflow(
    url: str, tokens: dict[str, str], engine: Engine
) -> None:
    goal = {"type": "test.reviewed", "input": {"text": "from an assistant"}}

    async def main() -> tuple[CallToolResult, ...]:
        async with connected(url, tokens["admin"]) as session:
            submitted = await session.call_tool(
                "submit_goal", {**goal, "idempotency_key": "mcp-goal-1"}
            )
            again = await session.call_tool(
                "submit_goal", {**goal, "idempotency_key": "mcp-goal-1"}
            )
            other = await session.call_tool(
                "submit_goal",
                {
                    "type": "test.reviewed",
                    "input": {"text": "other"},
                    "idempotency_key": "mcp-goal-1",
                },
            )
            read = await session.call_tool("get_workflow", {"workflow_id": "mcp-goal-1"})
            listed = await session.call_tool("list_workflows", {"goal_id": "mcp-goal-1"})
            return submitted, again, other, read, listed

    submitted, again, other, read, listed = run(main)

    assert not submitted.is_error, text_of(submitted)
    assert submitted.structured_content == {
        "workflow_id": "mcp-goal-1",
        "status_url": "/api/v1/workflows/mcp-goal-1",
    }
    assert again.structured_content == submitted.structured_content  # idempotent
    assert other.is_error
    assert "409" in text_of(other)
    assert read.structured_content is not None
    assert (read.structured_content["status"], read.structured_content["input"]) == (
        "accepted",
        {"text": "from an assistant"},
    )
    assert listed.structured_content is not None
    assert [w["id"] for w in listed.structured_content["items"]] == ["mcp-goal-1"]
    with engine.connect() as conn:
        assert conn.execute(select(workflows.c.id)).scalars().all() == ["mcp-goal-1"]
    admin = NAMES["admin"]
    assert mcp_calls(engine, "submit_goal") == [
        (admin, "http", "ok"),
        (admin, "http", "ok"),
        (admin, "http", "409"),
    ]
    assert mcp_calls(engine, "get_workflow") == [(admin, "http", "ok")]
    (row,) = [r for r in audit_rows(engine, "mcp_call") if r.detail["tool"] == "get_workflow"]
    assert row.workflow_id == "mcp-goal-1"


def test_a_goal_that_breaks_its_playbook_is_a_tool_error_saying_why(
    url: str, tokens: dict[str, str]
) -> None:
    unknown = call(url, tokens["admin"], "submit_goal", type="no.such.goal", input={})
    invalid = call(url, tokens["admin"], "submit_goal", type="test.reviewed", input={"text": "x"})
    bad_key = call(
        url, tokens["admin"], "submit_goal", type="test.reviewed", input={}, idempotency_key="a b"
    )

    assert unknown.is_error
    assert "422" in text_of(unknown)
    assert "test.reviewed" in text_of(unknown)  # the known types
    assert bad_key.is_error
    assert "400" in text_of(bad_key)
    # The harness's playbook has no input schema: any object is accepted.
    assert not invalid.is_error


def test_a_reviewer_token_is_refused_an_admin_only_tool_naming_the_role(
    url: str, tokens: dict[str, str], engine: Engine
) -> None:
    result = call(
        url, tokens["reviewer"], "submit_goal", type="test.reviewed", input={"text": "no"}
    )

    assert result.is_error
    assert "403" in text_of(result)
    assert "needs the admin role" in text_of(result)
    assert "reviewer" in text_of(result)
    with engine.connect() as conn:
        assert conn.execute(select(workflows.c.id)).all() == []
    assert mcp_calls(engine, "submit_goal") == [(NAMES["reviewer"], "http", "403")]


def test_a_reviewer_decides_an_escalation_on_the_version_read_and_a_stale_one_is_refused(
    url: str, tokens: dict[str, str], engine: Engine, review_harness: ReviewHarness
) -> None:
    opened = review_harness.escalate("g-mcp-decide")

    async def main() -> tuple[CallToolResult, ...]:
        async with connected(url, tokens["reviewer"]) as session:
            listed = await session.call_tool("list_escalations", {"goal_type": "test.reviewed"})
            read = await session.call_tool("get_escalation", {"escalation_id": opened.id})
            assert read.structured_content is not None
            bound = {
                "escalation_id": opened.id,
                "version": read.structured_content["version"],
                "digest": read.structured_content["digest"],
            }
            decided = await session.call_tool("decide_escalation", {**bound, "action": "approve"})
            stale = await session.call_tool(
                "decide_escalation", {**bound, "action": "reject", "reason": "too late"}
            )
            return listed, decided, stale

    listed, decided, stale = run(main)

    assert listed.structured_content is not None
    assert [e["id"] for e in listed.structured_content["items"]] == [opened.id]
    assert not decided.is_error, text_of(decided)
    assert decided.structured_content is not None
    assert decided.structured_content["escalation_id"] == opened.id
    assert decided.structured_content["version"] == opened.version + 1
    assert stale.is_error
    assert "409" in text_of(stale)
    assert "read it again" in text_of(stale)
    after = review_harness.escalation(opened.id)
    assert after.status is EscalationStatus.DECIDED
    assert after.decision is not None
    assert (after.decision.action, after.decision.reviewer) == ("approve", NAMES["reviewer"])
    (decision,) = audit_rows(engine, "decide")
    assert (decision.actor, decision.escalation_id) == (NAMES["reviewer"], opened.id)
    reviewer = NAMES["reviewer"]
    assert mcp_calls(engine, "decide_escalation") == [
        (reviewer, "http", "ok"),
        (reviewer, "http", "409"),
    ]


def test_deciding_needs_the_decide_role_and_arguments_that_fit_the_schema(
    url: str, tokens: dict[str, str], review_harness: ReviewHarness
) -> None:
    opened = review_harness.escalate("g-mcp-analyst")
    bound = {"escalation_id": opened.id, "version": opened.version, "digest": opened.digest}

    analyst = call(url, tokens["analyst"], "decide_escalation", **bound, action="approve")
    malformed = call(
        url, tokens["reviewer"], "decide_escalation", **{**bound, "digest": "xyz"}, action="ok"
    )

    assert analyst.is_error
    assert "needs the admin or reviewer role" in text_of(analyst)
    assert malformed.is_error
    assert "digest" in text_of(malformed)
    assert "action" in text_of(malformed)
    assert review_harness.escalation(opened.id) == opened


def test_dead_letters_need_the_analyst_or_admin_role(url: str, tokens: dict[str, str]) -> None:
    reviewer = call(url, tokens["reviewer"], "list_dead_letters")
    analyst = call(url, tokens["analyst"], "list_dead_letters", status="any", facets=True)
    missing = call(url, tokens["analyst"], "get_dead_letter", dead_letter_id=42)

    assert reviewer.is_error
    assert "needs the admin or analyst role" in text_of(reviewer)
    assert not analyst.is_error, text_of(analyst)
    assert analyst.structured_content is not None
    assert (analyst.structured_content["total"], analyst.structured_content["items"]) == (0, [])
    assert missing.is_error
    assert "404" in text_of(missing)


# --- resources --------------------------------------------------------------------------------


def test_playbooks_and_a_workflow_are_resources(
    url: str, tokens: dict[str, str], engine: Engine, review_harness: ReviewHarness
) -> None:
    review_harness.escalate("g-mcp-resource")

    async def main() -> tuple[Any, ...]:
        async with connected(url, tokens["analyst"]) as session:
            index = await session.read_resource("waypost://playbooks")
            one = await session.read_resource("waypost://playbooks/test.reviewed")
            workflow = await session.read_resource("waypost://workflows/g-mcp-resource")
            with pytest.raises(MCPError) as missing:
                await session.read_resource("waypost://workflows/nowhere")
            return index, one, workflow, missing.value

    index, one, workflow, missing = run(main)

    def body(result: Any) -> Any:
        (content,) = result.contents
        assert isinstance(content, TextResourceContents)
        assert content.mime_type == "application/json"
        return json.loads(content.text)

    assert "test.reviewed" in [p["type"] for p in body(index)]
    assert body(one)["document"]["steps"][0]["name"] == "draft"
    shown = body(workflow)
    assert (shown["id"], shown["tasks"][0]["status"]) == ("g-mcp-resource", "awaiting_review")
    assert "no workflow" in str(missing)
    analyst = NAMES["analyst"]
    assert mcp_calls(engine, "read:workflow") == [(analyst, "http", "ok"), (analyst, "http", "404")]


# --- stdio ------------------------------------------------------------------------------------


def test_waypost_mcp_serve_speaks_stdio_as_its_token(
    make_settings: Callable[..., Any],
    tokens: dict[str, str],
    engine: Engine,
    review_harness: ReviewHarness,
    tmp_path: Path,
) -> None:
    review_harness.escalate("g-mcp-stdio")
    env = stdio_env(make_settings, tmp_path, token=tokens["reviewer"])
    server = StdioServerParameters(command=sys.executable, args=SERVE, env=env, cwd=ROOT)
    errors = tmp_path / "stderr.log"

    async def main() -> tuple[Any, CallToolResult, CallToolResult]:
        async with (
            stdio_client(server, errlog=errors.open("w")) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = await session.list_tools()
            workflow = await session.call_tool("get_workflow", {"workflow_id": "g-mcp-stdio"})
            refused = await session.call_tool("submit_goal", {"type": "test.reviewed", "input": {}})
            return tools, workflow, refused

    tools, workflow, refused = run(main)

    assert "decide_escalation" in {tool.name for tool in tools.tools}
    assert not workflow.is_error, text_of(workflow)
    assert workflow.structured_content is not None
    assert workflow.structured_content["id"] == "g-mcp-stdio"
    assert refused.is_error
    assert "needs the admin role" in text_of(refused)
    reviewer = NAMES["reviewer"]
    assert mcp_calls(engine, "get_workflow") == [(reviewer, "stdio", "ok")]
    assert mcp_calls(engine, "submit_goal") == [(reviewer, "stdio", "403")]
    assert f"serving MCP on stdio as {reviewer} (reviewer)" in errors.read_text()


@pytest.mark.usefixtures("review_harness")  # its playbooks
def test_stdout_carries_only_the_protocol_and_a_bad_token_stops_the_server(
    make_settings: Callable[..., Any], tokens: dict[str, str], tmp_path: Path
) -> None:
    messages = [
        INITIALIZE,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    errors = tmp_path / "stderr.log"
    with errors.open("w") as stderr:
        served = subprocess.Popen(
            [sys.executable, *SERVE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=stdio_env(make_settings, tmp_path, token=tokens["analyst"]),
            cwd=ROOT,
            text=True,
        )
        assert served.stdin is not None
        assert served.stdout is not None
        served.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        served.stdin.flush()
        # Every line on stdout is a JSON-RPC message: the two answers, nothing else.
        answers = [json.loads(served.stdout.readline()) for _ in range(2)]
        served.stdin.close()  # the client leaves: the server ends
        rest = served.stdout.read()
        served.wait(30)
    refused = subprocess.run(
        [sys.executable, *SERVE, "--token", "wp_not-a-token"],
        input="",
        env=stdio_env(make_settings, tmp_path, token=None),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert [a["id"] for a in answers] == [1, 2]
    assert "get_dead_letter" in {tool["name"] for tool in answers[1]["result"]["tools"]}
    assert rest == ""
    assert served.returncode == 0
    assert "serving MCP on stdio as ann-mcp (analyst)" in errors.read_text()
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "the API token is unknown or revoked" in refused.stderr


SERVE = ["-m", "waypost", "mcp", "serve"]


def stdio_env(
    make_settings: Callable[..., Any], tmp_path: Path, *, token: str | None
) -> dict[str, str]:
    """The environment of `waypost mcp serve` on this test's broker, database and
    playbooks (the review harness's), acting as ``token``."""
    settings: HttpSettings = make_settings(HttpSettings)
    assert settings.kafka_bootstrap is not None
    assert settings.database_url is not None
    env = {
        **os.environ,
        "WAYPOST_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "WAYPOST_DATABASE_URL": settings.database_url,
        "WAYPOST_DATABASE_SCHEMA": settings.database_schema,
        "WAYPOST_NAMESPACE": settings.namespace,
        "WAYPOST_DATA_DIR": str(tmp_path / "data"),
        "WAYPOST_PLAYBOOK_DIRS": str(tmp_path / "playbooks"),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("WAYPOST_API_TOKEN", None)
    if token is not None:
        env["WAYPOST_API_TOKEN"] = token
    return env
