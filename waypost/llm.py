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

Errors (under ``waypost.errors.AgentError``)::

    LLMError
    ├── LLMRefused       the endpoint refused the request (4xx: bad key, unknown model,
    │                    request too large) or answered without text; not retried
    └── LLMUnavailable   no answer, a timeout, 408/409/429 or 5xx; the step is retried
                         per the playbook's retries and backoff
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from waypost.errors import AgentError, ConfigError, NonRetryableError
from waypost.sdk import AgentContext

Role = Literal["system", "user", "assistant"]

_RETRYABLE_STATUS = frozenset({408, 409, 429})


class LLMError(AgentError):
    """A model call did not produce a reply."""


class LLMRefused(LLMError, NonRetryableError):
    """The endpoint refused the request; sending it again cannot help."""


class LLMUnavailable(LLMError):
    """The endpoint did not answer usefully this time; a later attempt may succeed."""


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
class Message:
    """One chat message."""

    role: Role
    content: str


def system(content: str) -> Message:
    """A system message: instructions."""
    return Message("system", content)


def user(content: str) -> Message:
    """A user message: the material to work on."""
    return Message("user", content)


def assistant(content: str) -> Message:
    """An assistant message: an earlier answer, or an example of one."""
    return Message("assistant", content)


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
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of a ``/chat/completions`` request."""
    if not messages:
        raise ValueError("a chat needs at least one message")
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
    }
    if temperature is not None:
        body["temperature"] = temperature
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if json_output:
        body["response_format"] = {"type": "json_object"}
    body.update(extra or {})
    return body


def parse_completion(payload: Any, settings: LLMSettings) -> ChatReply:
    """The reply in a ``/chat/completions`` response body; usage missing counts as 0."""
    try:
        choice = payload["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise LLMRefused(f"the response has no choices[0].message: {str(payload)[:300]}") from None
    if not isinstance(text, str):
        raise LLMRefused("the model answered without text (a tool call or a refusal)")
    usage = payload.get("usage") or {}
    input_tokens = _count(usage.get("prompt_tokens"))
    output_tokens = _count(usage.get("completion_tokens"))
    cost = (
        input_tokens * settings.input_usd_per_mtok + output_tokens * settings.output_usd_per_mtok
    ) / 1_000_000
    return ChatReply(
        text=text,
        model=str(payload.get("model") or settings.model),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost,
        finish_reason=choice.get("finish_reason"),
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
            payload = response.json()
        except ValueError:
            raise LLMUnavailable(f"{self._url} answered with something other than JSON") from None
        reply = parse_completion(payload, self.settings)
        if ctx is not None:
            ctx.add_usage(
                input_tokens=reply.input_tokens,
                output_tokens=reply.output_tokens,
                cost_usd=reply.cost_usd,
            )
            ctx.note(
                f"{reply.model}: {reply.input_tokens} prompt + {reply.output_tokens} "
                "completion tokens"
            )
        return reply

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
