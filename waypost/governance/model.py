"""Governance data: policies as loaded, and the inputs and output of a decision.

Everything here is immutable and free of I/O, so a decision can be computed, compared
and audited anywhere (``engine.check`` is a pure function of these values).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

ANY = "*"
"""In an action list, a rate limit or a scope grant: every action (or every scope)."""

Outcome = Literal["allow", "deny", "require_approval"]
Cause = Literal[
    "no_policy",  # allow: no policy applies to the agent or its capability
    "allowed",  # allow: every applicable rule lets it through
    "approved",  # allow: needed approval, and a human gave it
    "denied",  # deny: a deny rule lists the action
    "not_allowed",  # deny: an allow list does not list the action
    "scope",  # deny: the action touches a data scope it is not granted
    "budget",  # deny: a token or money budget is spent, or would be overspent
    "rate_limit",  # deny: the rate window is full
    "approval",  # require_approval
]
Layer = Literal["agent", "capability", "all"]
LAYERS: tuple[Layer, ...] = ("agent", "capability", "all")
"""Most specific first: a policy naming the agent, then its capability, then everyone."""
Level = Literal["warning", "exhausted"]
Period = Literal["day", "workflow"]
Resource = Literal["tokens", "cost_usd"]
RiskLevel = Literal["low", "medium", "high", "critical"]
RISK_LEVELS: tuple[RiskLevel, ...] = ("low", "medium", "high", "critical")
"""Lowest first. An action no policy gives a level is ``low``; a ``critical`` one always
waits for a person."""
FOUR_EYES = 2
"""How many different reviewers approve an action under ``four_eyes_from``."""


def risk_rank(level: RiskLevel) -> int:
    """The position of a risk level, lowest first (to compare levels)."""
    return RISK_LEVELS.index(level)


@dataclass(frozen=True, slots=True)
class RuleRef:
    """Which rule of which policy version decided: enough to find and reproduce it."""

    policy: str
    file: str
    version: int
    digest: str
    path: str = ""  # e.g. "actions.deny[1]"; empty: the policy as a whole
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        rule = f" {self.path}" if self.path else ""
        return f"policy {self.policy!r} v{self.version}{rule} ({where})"


@dataclass(frozen=True, slots=True)
class AppliesTo:
    """Whom a policy governs: named agents, named capabilities, or everyone."""

    agents: frozenset[str] = frozenset()
    capabilities: frozenset[str] = frozenset()
    everyone: bool = False

    def layer(self, agent: str, capability: str) -> Layer | None:
        """How specifically this policy matches, or None when it does not apply."""
        if agent in self.agents:
            return "agent"
        if capability in self.capabilities:
            return "capability"
        return "all" if self.everyone else None


@dataclass(frozen=True, slots=True)
class ActionRule:
    """An entry of ``actions.deny`` or ``require_approval``."""

    action: str
    path: str
    reason: str = ""

    def matches(self, action: str) -> bool:
        """True for its own action, or for every action when it is ``*``."""
        return self.action in (action, ANY)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``limit`` actions (``*``: of any kind) per ``per_s`` seconds, per agent."""

    action: str
    limit: int
    per_s: float
    per: str  # as written, for messages ("1m")
    path: str

    @property
    def window(self) -> Window:
        """The count this limit needs from the context."""
        return Window(self.action, self.per_s)


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    """A cap on what one agent spends per UTC day or per workflow, in tokens or USD."""

    period: Period
    resource: Resource
    limit: float
    path: str


@dataclass(frozen=True, slots=True)
class Policy:
    """One policy file, validated: who it governs and what it allows them to do."""

    name: str
    version: int
    digest: str  # SHA-256 of the canonical document: identifies this version
    source: str
    applies_to: AppliesTo
    description: str = ""
    allow: frozenset[str] | None = None  # None: no allow list (everything not denied)
    deny: tuple[ActionRule, ...] = ()
    approvals: tuple[ActionRule, ...] = ()
    rate_limits: tuple[RateLimit, ...] = ()
    budgets: tuple[BudgetLimit, ...] = ()
    warn_at: float = 0.8
    scopes: Mapping[str, frozenset[str]] | None = None  # None: no scope rules
    risk: Mapping[str, RiskLevel] = field(default_factory=dict)  # action (or "*") -> level
    four_eyes_from: RiskLevel | None = None  # approvals from this level need two reviewers
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def ref(self, path: str = "") -> RuleRef:
        """A reference to one of this policy's rules (with its line in the file)."""
        return RuleRef(
            self.name, self.source, self.version, self.digest, path, self.lines.get(path)
        )

    def granted_scopes(self, action: str) -> frozenset[str]:
        """The data scopes ``action`` may touch under this policy."""
        scopes = self.scopes or {}
        return scopes.get(action, frozenset()) | scopes.get(ANY, frozenset())

    def risk_of(self, action: str) -> tuple[RiskLevel, str] | None:
        """The level this policy gives ``action`` and the path of the entry that gives
        it (its own entry, else the ``"*"`` entry); None when it gives none."""
        for key in (action, ANY):
            if key in self.risk:
                return self.risk[key], f"risk.{key}"
        return None


@dataclass(frozen=True, slots=True)
class Window:
    """A rate window: actions of one kind (``*``: of every kind) in the last ``seconds``."""

    action: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Spend:
    """Tokens and money."""

    tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Spend) -> Spend:
        return Spend(self.tokens + other.tokens, self.cost_usd + other.cost_usd)

    def of(self, resource: Resource) -> float:
        """The amount of one resource."""
        return float(self.tokens) if resource == "tokens" else self.cost_usd


@dataclass(frozen=True, slots=True)
class SpendChange:
    """An agent's spend today and in a workflow, (before, after) an addition."""

    today: tuple[Spend, Spend]
    workflow: tuple[Spend, Spend]


@dataclass(frozen=True, slots=True)
class Proposal:
    """An action an agent wants to take, before it takes it."""

    agent: str
    capability: str
    action: str
    params_digest: str = ""  # SHA-256 of the parameters (audited, never the parameters)
    params_size: int = 0
    scopes: frozenset[str] = frozenset()  # data scopes the action touches
    estimate: Spend = Spend()  # what the action is expected to spend
    workflow_id: str | None = None
    task_id: str | None = None
    approved_by: str | None = None  # who approved it, when a human already did


@dataclass(frozen=True, slots=True)
class Context:
    """What the engine needs to know besides the proposal: the time, the agent's recent
    actions per rate window and what it spent so far today and in this workflow."""

    now: datetime
    recent: Mapping[Window, int] = field(default_factory=dict)
    spent_today: Spend = Spend()
    spent_in_workflow: Spend = Spend()


@dataclass(frozen=True, slots=True)
class BudgetNotice:
    """A budget at or past its warning level (``warning``) or its limit (``exhausted``).

    ``crossed``: this spend moved it past that level, which happens once per limit and
    period because spend only grows; events are published for crossed notices only.
    """

    level: Level
    period: Period
    resource: Resource
    limit: float
    spent: float  # before this action
    projected: float  # after it
    crossed: bool
    rule: RuleRef


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """The engine's answer: allow, deny or require approval, which rule decided, why."""

    outcome: Outcome
    cause: Cause
    reason: str
    at: datetime
    rule: RuleRef | None = None
    notices: tuple[BudgetNotice, ...] = ()
    context_digest: str = ""
    audit_id: int | None = None  # its policy_decisions row, once recorded
    risk: RiskLevel = "low"  # the highest level any applicable policy gives the action
    approvals: int = 1  # different reviewers an approval needs (FOUR_EYES under four eyes)

    @property
    def allowed(self) -> bool:
        """True when the action may go ahead now."""
        return self.outcome == "allow"
