"""The agent SDK: ``@agent("triage")`` turns a typed function into a capability.

    from pydantic import BaseModel
    from waypost import AgentContext, AgentResult, agent

    class Ticket(BaseModel):
        subject: str
        body: str

    class Triage(BaseModel):
        category: str
        urgency: str

    @agent("triage", version="1.2")
    def triage(ticket: Ticket, ctx: AgentContext) -> AgentResult[Triage]:
        ctx.note("matched 4 of 5 nearest examples")
        return AgentResult(Triage(category="billing", urgency="high"), confidence=0.8)

The input and output types come from the annotations (pydantic models). A handler may
return the bare output model (confidence 1.0). Raise ``NonRetryableError`` when trying
again cannot help; any other exception is a retryable failure. ``@triage.setup``
registers a function run once per worker before the first task; what it returns is
available to the handler as ``ctx.resource(Type)``.

``@agent("triage", concurrency=8)`` runs up to 8 tasks of a polled batch at once, in
threads; tasks with the same key (the same task id) still run one after another.

``ctx.act("send_email", {...})`` asks governance before an action (docs/governance.md):
it returns the decision when the policies allow the action and raises otherwise.
"""

from __future__ import annotations

import inspect
import re
import threading
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, get_args, get_origin

from pydantic import BaseModel

from waypost.errors import AgentDefinitionError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from waypost.embeddings import Embedder
    from waypost.governance.acting import TaskGovernance
    from waypost.governance.model import PolicyDecision
    from waypost.memory import AgentMemory
    from waypost.tools.governed import TaskTools

InT = TypeVar("InT", bound=BaseModel)
OutT = TypeVar("OutT", bound=BaseModel)
R = TypeVar("R")

_CAPABILITY = re.compile(r"^[a-z][a-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class AgentResult(Generic[OutT]):
    """What a handler returns: output plus how sure it is and why.

    ``escalate`` asks for a human: the output waits for a reviewer's decision in the
    review console, whatever its confidence (say why in a sentence a reviewer reads).
    """

    output: OutT
    confidence: float = 1.0
    reasoning: Sequence[str] = ()
    escalate: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be between 0 and 1, got {self.confidence}")


@dataclass(frozen=True, slots=True)
class Approval:
    """A reviewer approved ``action`` with the parameters whose digest is
    ``params_digest`` (a governance policy held it for approval)."""

    action: str
    params_digest: str
    approved_by: str
    escalation_id: str


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """Which task a handler is working on."""

    workflow_id: str
    task_id: str
    step: str
    capability: str
    attempt: int
    goal_type: str
    deadline: datetime
    approvals: tuple[Approval, ...] = ()
    """Actions of this task a reviewer approved; ``ctx.act`` passes them on."""


class AgentEnvironment(Protocol):
    """What a setup function receives: shared services of the worker process."""

    @property
    def embedder(self) -> Embedder:
        """The text embedder configured for this installation."""
        ...

    @property
    def instance(self) -> str:
        """This worker's name (host:pid unless configured)."""
        ...

    def database(self) -> Engine:
        """The database engine (created on first use; the runtime disposes of it)."""
        ...


@dataclass
class AgentContext:
    """Per-task helpers: reasoning notes, usage accounting and setup resources."""

    task: TaskInfo
    resources: dict[type, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    memory: AgentMemory | None = None
    """This agent's memories (``waypost.memory``); None when it runs without a database."""
    governance: TaskGovernance | None = field(default=None, repr=False)
    """Set by the runtime when policies are configured; ``act`` decides through it."""
    tools: TaskTools | None = field(default=None, repr=False)
    """The MCP tool servers (``ctx.tools.list(server)``, ``ctx.tools.call(server, tool,
    args)``; docs/mcp.md), each call governed through ``act``. Set by the runtime."""
    cancellation: threading.Event = field(default_factory=threading.Event, repr=False)
    """Set when a person cancels this task's workflow while it runs: wait on it
    (``ctx.cancellation.wait(seconds)``) instead of sleeping, and return early when set."""

    @property
    def cancelled(self) -> bool:
        """Whether this task's workflow was cancelled; whatever the handler returns then
        is ignored (docs/writing-an-agent.md, "Cancellation")."""
        return self.cancellation.is_set()

    @property
    def approvals(self) -> tuple[Approval, ...]:
        """Actions of this task a reviewer approved (with their parameters' digests)."""
        return self.task.approvals

    def act(
        self,
        action: str,
        params: Mapping[str, Any] | None = None,
        *,
        scopes: Iterable[str] = (),
        tokens: int = 0,
        cost_usd: float = 0.0,
    ) -> PolicyDecision:
        """Ask governance before taking ``action`` with ``params`` (JSON values; only
        their SHA-256 and size are recorded), touching data ``scopes`` and expected to
        spend ``tokens`` and ``cost_usd``.

        Returns the decision when the policies allow the action (without policies:
        always, and nothing is recorded). Otherwise raises: ``ActionForbidden`` or
        ``BudgetStopped`` (the task fails without retries, its reason the policy's),
        ``RateLimited`` (a retryable failure) or ``ApprovalRequired`` (the task waits
        for a reviewer; once approved it runs again and this same call is allowed).
        Let them out of the handler unless it has something else to do.
        """
        if self.governance is not None:
            return self.governance.act(
                action, params, scopes=scopes, tokens=tokens, cost_usd=cost_usd
            )
        from waypost.governance.acting import ungoverned

        return ungoverned(
            action,
            params,
            agent=self.task.capability,
            tokens=tokens,
            cost_usd=cost_usd,
            at=datetime.now(UTC),
        )

    def note(self, text: str) -> None:
        """Add a line to the reasoning trace shown to reviewers (kept to 2,000 characters)."""
        self.notes.append(text if len(text) <= 2000 else text[:1999] + "…")

    def add_usage(
        self, *, input_tokens: int = 0, output_tokens: int = 0, cost_usd: float = 0.0
    ) -> None:
        """Account tokens and money this task spent (for example on a model call)."""
        if min(input_tokens, output_tokens, cost_usd) < 0:
            raise ValueError(
                f"usage cannot be negative (input_tokens={input_tokens}, "
                f"output_tokens={output_tokens}, cost_usd={cost_usd})"
            )
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cost_usd += cost_usd

    def resource(self, kind: type[R]) -> R:
        """The object of type ``kind`` that a ``setup`` function returned."""
        try:
            value: R = self.resources[kind]
        except KeyError:
            raise LookupError(
                f"no resource of type {kind.__name__}; register one with @<agent>.setup"
            ) from None
        return value


class Agent(Generic[InT, OutT]):
    """A capability: a typed handler plus its setup functions."""

    def __init__(
        self,
        capability: str,
        handler: Callable[..., AgentResult[OutT] | OutT],
        *,
        version: str,
        description: str,
        concurrency: int = 1,
    ) -> None:
        if not _CAPABILITY.match(capability):
            raise AgentDefinitionError(
                f"capability {capability!r} must be lower-case letters, digits, '.', '_' or "
                "'-', starting with a letter"
            )
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise AgentDefinitionError(
                f"agent {capability!r}: concurrency must be a whole number of at least 1, "
                f"not {concurrency!r}"
            )
        self.capability = capability
        self.handler = handler
        self.version = version
        self.concurrency = concurrency
        self.description = description or (inspect.getdoc(handler) or "").split("\n")[0]
        self.input_model, self.output_model, self.takes_context = _signature(handler)
        self.setups: list[Callable[[Any], Any]] = []

    def input_schema(self) -> dict[str, Any]:
        """The JSON Schema of the task input (from the input model)."""
        return self.input_model.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        """The JSON Schema of the output (from the output model)."""
        return self.output_model.model_json_schema(mode="serialization")

    def setup(self, function: Callable[[Any], R]) -> Callable[[Any], R]:
        """Register a function run once per worker; its return value becomes a resource."""
        self.setups.append(function)
        return function

    def run(self, task_input: InT, context: AgentContext) -> AgentResult[OutT]:
        """Call the handler and normalise what it returns."""
        returned = (
            self.handler(task_input, context) if self.takes_context else self.handler(task_input)
        )
        if isinstance(returned, AgentResult):
            result: AgentResult[OutT] = returned
        else:
            result = AgentResult(returned)
        if not isinstance(result.output, self.output_model):
            raise TypeError(
                f"agent {self.capability!r} returned {type(result.output).__name__}, "
                f"expected {self.output_model.__name__}"
            )
        return result

    def __repr__(self) -> str:
        return f"Agent({self.capability!r}, version={self.version!r})"


def agent(
    capability: str, *, version: str = "1", description: str = "", concurrency: int = 1
) -> Callable[[Callable[..., Any]], Agent[Any, Any]]:
    """Declare a function as the handler of ``capability``.

    ``concurrency``: how many tasks one worker runs at once, in threads (tasks with the
    same key one after another); the handler and its resources must then be thread-safe.
    """

    def register(handler: Callable[..., Any]) -> Agent[Any, Any]:
        return Agent(
            capability,
            handler,
            version=version,
            description=description,
            concurrency=concurrency,
        )

    return register


def _signature(handler: Callable[..., Any]) -> tuple[type[BaseModel], type[BaseModel], bool]:
    name = getattr(handler, "__name__", repr(handler))
    try:
        hints = typing.get_type_hints(handler)
    except NameError as exc:
        raise AgentDefinitionError(f"{name}: cannot resolve type hints ({exc})") from None
    parameters = list(inspect.signature(handler).parameters)
    if not 1 <= len(parameters) <= 2:
        raise AgentDefinitionError(
            f"{name} must take (input) or (input, ctx), not {len(parameters)} parameters"
        )
    input_model = hints.get(parameters[0])
    if not (isinstance(input_model, type) and issubclass(input_model, BaseModel)):
        raise AgentDefinitionError(f"{name}: annotate its input with a pydantic model")
    if len(parameters) == 2 and hints.get(parameters[1], AgentContext) is not AgentContext:
        raise AgentDefinitionError(
            f"{name}: its second parameter receives the AgentContext; annotate it as such"
        )
    returned = hints.get("return")
    candidates = [returned]
    if get_origin(returned) in (typing.Union, types.UnionType):
        candidates = list(get_args(returned))
    for candidate in candidates:
        if get_origin(candidate) is AgentResult:
            candidate = get_args(candidate)[0]
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return input_model, candidate, len(parameters) == 2
    raise AgentDefinitionError(
        f"{name}: annotate its return type with a pydantic model or AgentResult[Model]"
    )
