"""The LLM base (waypost.llm) against a fake OpenAI-compatible server on 127.0.0.1, and
the LLM-backed example agent of docs/workflows.md."""

from __future__ import annotations

import importlib
import json
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.agents.environment import Environment, context
from waypost import NonRetryableError
from waypost.errors import ConfigError
from waypost.llm import (
    LLMClient,
    LLMRefused,
    LLMSettings,
    LLMUnavailable,
    assistant,
    completion_request,
    system,
    user,
)
from waypost.stack.process import free_port

DOCS = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"


def completion(text: str | None, prompt_tokens: int = 12, completion_tokens: int = 5) -> Any:
    """A /chat/completions response body as OpenAI-compatible servers send it."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "fake-model-2024",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


@dataclass
class FakeServer:
    """What the fake endpoint received, and what it answers next."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[tuple[int, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    hang: bool = False


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """An OpenAI-compatible /v1/chat/completions on 127.0.0.1, in a thread."""
    state = FakeServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.requests.append(
                {
                    "path": self.path,
                    "authorization": self.headers.get("Authorization"),
                    "body": json.loads(self.rfile.read(length)),
                }
            )
            if state.hang:
                state.release.wait(10)
                return
            status, answer = state.answers.pop(0) if state.answers else (200, completion("ok"))
            data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    # A short poll interval: shutdown() waits for the loop's next look.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _client(server: FakeServer, **settings: Any) -> LLMClient:
    values: dict[str, Any] = {"base_url": server.url, "model": "fake-model", **settings}
    return LLMClient(LLMSettings(**values))


def test_a_chat_returns_the_text_and_adds_its_usage_to_the_task(server: FakeServer) -> None:
    server.answers.append((200, completion("A gist.", prompt_tokens=1200, completion_tokens=300)))
    client = _client(server, api_key="sk-test", input_usd_per_mtok=2.5, output_usd_per_mtok=10.0)
    ctx = context("gist")

    reply = client.chat([system("Be brief."), user("Hello")], ctx=ctx, max_tokens=50)

    assert (reply.text, reply.model, reply.finish_reason) == ("A gist.", "fake-model-2024", "stop")
    assert (ctx.input_tokens, ctx.output_tokens) == (1200, 300)
    assert ctx.cost_usd == pytest.approx(1200 * 2.5e-6 + 300 * 10e-6)
    assert ctx.notes == ["fake-model-2024: 1200 prompt + 300 completion tokens"]
    [request] = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["authorization"] == "Bearer sk-test"
    assert request["body"] == {
        "model": "fake-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
        ],
        "temperature": 0.0,
        "max_tokens": 50,
    }
    client.close()


def test_usage_adds_up_over_several_calls_and_no_key_sends_no_header(server: FakeServer) -> None:
    server.answers += [(200, completion("a", 10, 1)), (200, completion("b", 20, 2))]
    client = _client(server)
    ctx = context("gist")

    client.chat([user("one")], ctx=ctx)
    client.chat([user("two"), assistant("b"), user("again")], ctx=ctx)

    assert (ctx.input_tokens, ctx.output_tokens, ctx.cost_usd) == (30, 3, 0.0)
    assert [r["authorization"] for r in server.requests] == [None, None]


def test_a_reply_without_usage_counts_nothing_and_none_without_ctx(server: FakeServer) -> None:
    body = completion("fine")
    del body["usage"]
    server.answers.append((200, body))

    reply = _client(server).chat([user("hi")], ctx=None)

    assert (reply.text, reply.input_tokens, reply.output_tokens) == ("fine", 0, 0)


def test_json_output_and_extra_fields_reach_the_request() -> None:
    body = completion_request(
        "m", [user("x")], temperature=None, json_output=True, extra={"seed": 7}
    )

    assert body == {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_object"},
        "seed": 7,
    }
    with pytest.raises(ValueError, match="at least one message"):
        completion_request("m", [])


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_busy_or_failing_endpoints_are_retried_by_the_playbook(
    server: FakeServer, status: int
) -> None:
    server.answers.append((status, {"error": {"message": "try later"}}))
    ctx = context("gist")

    with pytest.raises(LLMUnavailable, match=f"answered {status}") as raised:
        _client(server).chat([user("hi")], ctx=ctx)

    assert not isinstance(raised.value, NonRetryableError)
    assert (ctx.input_tokens, ctx.output_tokens) == (0, 0)


@pytest.mark.parametrize("status", [400, 401, 404])
def test_a_refused_request_is_not_retried_and_says_what_to_check(
    server: FakeServer, status: int
) -> None:
    server.answers.append((status, {"error": {"message": "invalid model"}}))

    with pytest.raises(
        LLMRefused, match="check WAYPOST_LLM_MODEL and WAYPOST_LLM_API_KEY"
    ) as raised:
        _client(server).chat([user("hi")], ctx=None)

    assert isinstance(raised.value, NonRetryableError)
    assert "invalid model" in str(raised.value)


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        (completion(None), LLMRefused, "without text"),
        ({"choices": []}, LLMRefused, "no choices"),
        ("<html>gateway</html>", LLMUnavailable, "other than JSON"),
    ],
)
def test_an_answer_without_text_is_an_error(
    server: FakeServer, answer: Any, error: type[Exception], message: str
) -> None:
    server.answers.append((200, answer))

    with pytest.raises(error, match=message):
        _client(server).chat([user("hi")], ctx=None)


def test_no_answer_in_time_and_nobody_listening_are_retryable(server: FakeServer) -> None:
    server.hang = True
    with pytest.raises(LLMUnavailable, match="no answer from"):
        _client(server, timeout_s=0.3).chat([user("hi")], ctx=None)

    closed = LLMClient(LLMSettings(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m"))
    with pytest.raises(LLMUnavailable, match="no answer from"):
        closed.chat([user("hi")], ctx=None)


def test_settings_come_from_the_environment_and_name_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("BASE_URL", "MODEL", "API_KEY", "TIMEOUT_S"):
        monkeypatch.delenv(f"WAYPOST_LLM_{name}", raising=False)

    with pytest.raises(ConfigError) as raised:
        LLMSettings.from_env()
    assert "WAYPOST_LLM_BASE_URL: Field required" in str(raised.value)
    assert "WAYPOST_LLM_MODEL: Field required" in str(raised.value)

    monkeypatch.setenv("WAYPOST_LLM_BASE_URL", "http://localhost:11434/v1")
    monkeypatch.setenv("WAYPOST_LLM_MODEL", "llama3.2")
    monkeypatch.setenv("WAYPOST_LLM_API_KEY", "sk-secret")
    settings = LLMSettings.from_env()
    assert (settings.base_url, settings.model, settings.timeout_s) == (
        "http://localhost:11434/v1",
        "llama3.2",
        60.0,
    )
    assert "sk-secret" not in repr(settings)

    monkeypatch.setenv("WAYPOST_LLM_BASE_URL", "localhost:11434")
    with pytest.raises(ConfigError, match="WAYPOST_LLM_BASE_URL: String should match"):
        LLMSettings.from_env()


def test_the_example_agent_of_the_docs_runs(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocks = re.findall(r"```python\n# ticket_gist\.py\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert len(blocks) == 1, "docs/workflows.md shows the ticket_gist.py example once"
    (tmp_path / "ticket_gist.py").write_text(blocks[0])
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("WAYPOST_LLM_BASE_URL", server.url)
    monkeypatch.setenv("WAYPOST_LLM_MODEL", "fake-model")
    monkeypatch.delenv("WAYPOST_LLM_API_KEY", raising=False)
    server.answers.append((200, completion("  Customer was billed twice\nand wants a refund. ")))
    module = importlib.import_module("ticket_gist")
    try:
        agent = module.gist
        resources = {type(value): value for value in (s(Environment()) for s in agent.setups)}
        ctx = context("ticket.gist", resources)

        result = agent.run(
            agent.input_model(subject="Charged twice", body="I was billed twice this month."), ctx
        )

        assert result.output.model_dump() == {
            "gist": "Customer was billed twice and wants a refund."
        }
        assert (ctx.input_tokens, ctx.output_tokens) == (12, 5)
        sent = server.requests[0]["body"]["messages"]
        assert sent[-1] == {
            "role": "user",
            "content": "Charged twice\n\nI was billed twice this month.",
        }
    finally:
        sys.modules.pop("ticket_gist", None)
