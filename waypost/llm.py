"""Calling a language model from an agent: any OpenAI-compatible ``/chat/completions``.

Optional: nothing in Waypost needs a model, and this module needs no model SDK (it speaks
HTTP with httpx). Create the client once per worker in a setup function, from
``WAYPOST_LLM_BASE_URL``, ``WAYPOST_LLM_MODEL`` and ``WAYPOST_LLM_API_KEY``; each call
adds the tokens it used (and their price, when configured) to the task's usage::

    from waypost.llm import LLMClient, LLMSettings, system, user

    @gist.setup
    def connect(env: AgentEnvironment) -> LLMClient:
        return LLMClient(LLMSettings.from_env())

    @agent("gist")
    def gist(task: Text, ctx: AgentContext) -> Gist:
        reply = ctx.resource(LLMClient).chat([system(PROMPT), user(task.text)], ctx=ctx)
        return Gist(text=reply.text)

``chat_with_tools`` also offers the model the MCP tools of ``ctx.tools`` and runs the
tool loop, every call governed like ``ctx.tools.call`` (``waypost.llm_tools``)::

    answer = llm.chat_with_tools([system(PROMPT), user(task.text)], ctx=ctx,
                                 servers=["helpcentre"], max_tool_rounds=4)

Errors (under ``waypost.errors.AgentError``)::

    LLMError
    ├── LLMRefused       the endpoint refused the request (4xx: bad key, unknown model,
    │   │                request too large) or answered without text; not retried
    │   └── ToolRoundsExceeded  the model still asked for tools after max_tool_rounds
    │                    rounds of them; not retried
    └── LLMUnavailable   no answer, a timeout, 408/409/429 or 5xx; the step is retried
                         per the playbook's retries and backoff
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from waypost.errors import AgentError, ConfigError, NonRetryableError
from waypost.sdk import AgentContext

if TYPE_CHECKING:
    from waypost.llm_tools import ToolChatReply

Role = Literal["system", "user", "assistant", "tool"]

_RETRYABLE_STATUS = frozenset({408, 409, 429})


class LLMError(AgentError):
    """A model call did not produce a reply."""


class LLMRefused(LLMError, NonRetryableError):
    """The endpoint refused the request; sending it again cannot help."""


class LLMUnavailable(LLMError):
    """The endpoint did not answer usefully this time; a later attempt may succeed."""


class ToolRoundsExceeded(LLMRefused):
    """The model kept asking for tools past the loop's limit of rounds."""


class LLMSettings(BaseSettings):
    """Where the model is and what it costs (``WAYPOST_LLM_*``); load with ``from_env``."""

    model_config = SettingsConfigDict(env_prefix="WAYPOST_LLM_", extra="ignore", frozen=True)

    base_url: str = Field(
        pattern=r"^https?://\S+$",
        description="Base URL of the API, the part before /chat/completions "
        "(https://api.openai.com/v1, or http://localhost:11434/v1 for Ollama).",
    )
    model: str = Field(min_length=1, description="Model name sent with every request.")
    api_key: SecretStr | None = Field(
        None, description="Sent as a bearer token; unset for servers that need none."
    )
    timeout_s: float = Field(60.0, gt=0, description="Longest wait for one completion.")
    input_usd_per_mtok: float = Field(
        0.0, ge=0, description="Price of a million prompt tokens, for the task's cost_usd."
    )
    output_usd_per_mtok: float = Field(
        0.0, ge=0, description="Price of a million completion tokens, for the task's cost_usd."
    )

    @classmethod
    def from_env(cls, **overrides: Any) -> LLMSettings:
        """The settings from the environment; a missing or invalid one is a ConfigError
        that names its variable."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            problems = [
                f"WAYPOST_LLM_{str(error['loc'][0]).upper()}: {error['msg']}"
                for error in exc.errors()
            ]
            raise ConfigError("invalid LLM setting:\n  " + "\n  ".join(problems)) from None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call the model asked for; ``arguments`` is the model's JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message; ``tool_calls`` on the assistant's turn that asked for tools,
    ``tool_call_id`` on the ``tool`` message answering one of them."""

    role: Role
    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The message as ``/chat/completions`` takes it."""
        body: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            body["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        if self.tool_call_id is not None:
            body["tool_call_id"] = self.tool_call_id
        return body


def system(content: str) -> Message:
    """A system message: instructions."""
    return Message("system", content)


def user(content: str) -> Message:
    """A user message: the material to work on."""
    return Message("user", content)


def assistant(content: str) -> Message:
    """An assistant message: an earlier answer, or an example of one."""
    return Message("assistant", content)


def tool_result(call_id: str, content: str) -> Message:
    """A ``tool`` message: what the call ``call_id`` returned (data, not instructions)."""
    return Message("tool", content, tool_call_id=call_id)


@dataclass(frozen=True, slots=True)
class Turn:
    """One completion: the text and/or the tool calls the model answered with."""

    text: str | None
    tool_calls: tuple[ToolCall, ...]
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    finish_reason: str | None

    def as_message(self) -> Message:
        """The assistant message that goes back into the conversation."""
        return Message("assistant", self.text, tool_calls=self.tool_calls)


@dataclass(frozen=True, slots=True)
class ChatReply:
    """The model's answer and what it cost."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    finish_reason: str | None


def completion_request(
    model: str,
    messages: Sequence[Message],
    *,
    temperature: float | None = 0.0,
    max_tokens: int | None = None,
    json_output: bool = False,
    tools: Sequence[Mapping[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of a ``/chat/completions`` request (``tools``: function specs)."""
    if not messages:
        raise ValueError("a chat needs at least one message")
    body: dict[str, Any] = {"model": model, "messages": [m.to_json() for m in messages]}
    if tools:
        body["tools"] = [dict(spec) for spec in tools]
    if temperature is not None:
        body["temperature"] = temperature
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if json_output:
        body["response_format"] = {"type": "json_object"}
    body.update(extra or {})
    return body


def parse_turn(payload: Any, settings: LLMSettings) -> Turn:
    """The text and tool calls in a ``/chat/completions`` response body; usage missing
    counts as 0."""
    try:
        choice = payload["choices"][0]
        message = choice["message"]
        text = message.get("content")
        raw_calls = message.get("tool_calls") or []
        calls = tuple(
            ToolCall(str(c["id"]), str(c["function"]["name"]), c["function"].get("arguments") or "")
            for c in raw_calls
        )
    except (KeyError, IndexError, TypeError, AttributeError):
        raise LLMRefused(f"the response has no choices[0].message: {str(payload)[:300]}") from None
    if not isinstance(text, str | None) or not all(isinstance(c.arguments, str) for c in calls):
        raise LLMRefused(f"the response's message is malformed: {str(payload)[:300]}")
    usage = payload.get("usage") or {}
    input_tokens = _count(usage.get("prompt_tokens"))
    output_tokens = _count(usage.get("completion_tokens"))
    cost = (
        input_tokens * settings.input_usd_per_mtok + output_tokens * settings.output_usd_per_mtok
    ) / 1_000_000
    return Turn(
        text=text,
        tool_calls=calls,
        model=str(payload.get("model") or settings.model),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost,
        finish_reason=choice.get("finish_reason"),
    )


def parse_completion(payload: Any, settings: LLMSettings) -> ChatReply:
    """The reply in a ``/chat/completions`` response body; usage missing counts as 0."""
    turn = parse_turn(payload, settings)
    if turn.text is None:
        raise LLMRefused("the model answered without text (a tool call or a refusal)")
    return ChatReply(
        text=turn.text,
        model=turn.model,
        input_tokens=turn.input_tokens,
        output_tokens=turn.output_tokens,
        cost_usd=turn.cost_usd,
        finish_reason=turn.finish_reason,
    )


class LLMClient:
    """An HTTP client for one endpoint and model; thread-safe, one per worker."""

    def __init__(
        self, settings: LLMSettings, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.settings = settings
        headers = {}
        if settings.api_key is not None:
            headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        self._url = settings.base_url.rstrip("/") + "/chat/completions"
        self._http = httpx.Client(headers=headers, timeout=settings.timeout_s, transport=transport)

    def chat(
        self,
        messages: Sequence[Message],
        *,
        ctx: AgentContext | None,
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
        json_output: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> ChatReply:
        """Send the messages; return the reply and add its usage to ``ctx``.

        ``ctx`` is required so that a handler cannot forget its usage; pass None only
        outside a task. ``json_output`` asks for a JSON object (``response_format``);
        ``extra`` adds fields of the endpoint's own (``seed``, ``top_p``, ...).
        """
        body = completion_request(
            self.settings.model,
            messages,
            temperature=temperature,
            max_tokens=max_tokens,
            json_output=json_output,
            extra=extra,
        )
        reply = parse_completion(self.post(body), self.settings)
        if ctx is not None:
            _account(ctx, reply.model, reply.input_tokens, reply.output_tokens, reply.cost_usd)
        return reply

    def complete(self, body: Mapping[str, Any], *, ctx: AgentContext | None) -> Turn:
        """Send one prepared request body (``completion_request``); the model's turn,
        whose usage is added to ``ctx``. The tool loop's building block."""
        turn = parse_turn(self.post(body), self.settings)
        if ctx is not None:
            _account(ctx, turn.model, turn.input_tokens, turn.output_tokens, turn.cost_usd)
        return turn

    def chat_with_tools(
        self,
        messages: Sequence[Message],
        *,
        ctx: AgentContext,
        servers: Sequence[str],
        only: Sequence[str] | None = None,
        max_tool_rounds: int = 4,
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> ToolChatReply:
        """Chat with the MCP tools of ``servers`` (``only``: just these ``server/tool``
        names) offered to the model, running the tool loop: each call the model asks for
        goes through ``ctx.tools.call``, so governance, audit, tracing and metrics apply;
        what it returns goes back as a ``tool`` message (data). After
        ``max_tool_rounds`` rounds of calls the model must answer in text, or
        ``ToolRoundsExceeded`` is raised. See ``waypost.llm_tools``."""
        from waypost.llm_tools import run_tool_loop

        return run_tool_loop(
            self,
            messages,
            ctx=ctx,
            servers=servers,
            only=only,
            max_tool_rounds=max_tool_rounds,
            temperature=temperature,
            max_tokens=max_tokens,
            extra=extra,
        )

    def post(self, body: Mapping[str, Any]) -> Any:
        """POST ``body`` to ``/chat/completions``; the decoded JSON answer."""
        try:
            response = self._http.post(self._url, json=body)
        except httpx.TransportError as exc:
            raise LLMUnavailable(f"no answer from {self._url}: {exc!r}") from exc
        if response.status_code in _RETRYABLE_STATUS or response.status_code >= 500:
            raise LLMUnavailable(
                f"{self._url} answered {response.status_code}: {response.text[:300]}"
            )
        if response.status_code >= 400:
            raise LLMRefused(
                f"{self._url} refused the request ({response.status_code}): "
                f"{response.text[:300]}; check WAYPOST_LLM_MODEL and WAYPOST_LLM_API_KEY"
            )
        try:
            return response.json()
        except ValueError:
            raise LLMUnavailable(f"{self._url} answered with something other than JSON") from None

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()


def _account(
    ctx: AgentContext, model: str, input_tokens: int, output_tokens: int, cost_usd: float
) -> None:
    ctx.add_usage(input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost_usd)
    ctx.note(f"{model}: {input_tokens} prompt + {output_tokens} completion tokens")


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
