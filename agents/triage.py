"""The ``triage`` capability: category and urgency from the nearest labelled tickets.

The ticket is embedded and compared with about 150 hand-labelled example tickets; the k
most similar examples vote, each with a weight equal to its similarity.

Neighbours by topic say little about urgency (a duplicate charge can be a calm question
or an emergency), so urgency also listens to the wording: a small lexicon of cues
("immediately", "can't log in", a ticket that opens with a question...) adds to the level
each cue argues for. The vote (``classify``) and the cue search (``find_urgency_cues``)
are pure functions, tested without the SDK, a database or an embedder; bench/quality.py
measures both on the examples and on a held-out set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar, get_args

import numpy as np
from pydantic import BaseModel, Field, TypeAdapter

from agents.data import read_text
from waypost import AgentContext, AgentEnvironment, AgentResult, agent
from waypost.embeddings import Embedder, Vectors

Urgency = Literal["low", "normal", "high", "urgent"]
Label = TypeVar("Label", bound=str)

URGENCIES: tuple[Urgency, ...] = get_args(Urgency)

K = 7
"""How many nearest examples vote: odd, and small next to the ~25 examples per category.

Measured with bench/quality.py (1536 dimensions, mean of 8 seeds), k = 5 / 7 / 9 / 11:
category leave-one-out 0.74 / 0.78 / 0.79 / 0.78, held-out urgency 0.73 / 0.72 / 0.68 /
0.69. Larger k buys at most a point of category for several of urgency.
"""

CUE_WEIGHT = 0.5
"""What one urgency cue adds to its level, as a share of the whole neighbour vote.

The neighbour vote is normalised to shares that sum to 1, so one cue weighs as much as
half of all seven neighbours: enough to overturn a split vote, not a unanimous one; two
cues for one level outweigh any vote short of a unanimous one. Urgency accuracy for
weights 0.3 / 0.5 / 1.0 (bench/quality.py, mean of 8 seeds): leave-one-out 0.57 / 0.64 /
0.65, held-out 0.73 / 0.72 / 0.70. Larger weights fit the examples the lexicon was
written from, not new tickets; 0.5 is the compromise.
"""


class Ticket(BaseModel):
    """Input of ``triage``: the ticket as the customer wrote it."""

    subject: str
    body: str


class NearestExample(BaseModel):
    """One example ticket that took part in the vote (shown to reviewers)."""

    id: str
    similarity: float
    category: str
    urgency: Urgency


class Triage(BaseModel):
    """Output of ``triage``."""

    category: str
    urgency: Urgency
    nearest: list[NearestExample] = Field(default_factory=list)


class LabelledTicket(BaseModel):
    """One hand-labelled example ticket from ``agents/data/triage_examples.json``."""

    id: str
    subject: str
    body: str
    category: str
    urgency: Urgency


@dataclass(frozen=True)
class Examples:
    """Labelled examples with one unit-length embedding row per example."""

    tickets: Sequence[LabelledTicket]
    vectors: Vectors

    def __post_init__(self) -> None:
        if len(self.tickets) != self.vectors.shape[0]:
            raise ValueError(f"{len(self.tickets)} tickets but {self.vectors.shape[0]} vectors")


@dataclass(frozen=True)
class CueGroup:
    """Phrases that argue for one urgency level, for one stated reason."""

    urgency: Urgency
    reason: str
    patterns: tuple[str, ...]
    """Regular expressions, matched case-insensitively; ``^`` is the start of a line."""


URGENCY_CUES: tuple[CueGroup, ...] = (
    CueGroup(
        "urgent",
        "asks for speed",
        (
            r"\burgent(?:ly)?\b",
            r"\bemergency\b",
            r"\basap\b",
            r"\bas soon as possible\b",
            r"\bimmediately\b",
            r"\bright (?:now|away)\b",
            r"!!",
        ),
    ),
    CueGroup(
        "urgent",
        "security compromised",
        (r"\bhacked\b", r"\b(?:don'?t|do not) feel safe\b", r"\bno (?:security|alarm)\b"),
    ),
    CueGroup(
        "urgent",
        "safety or vulnerable people",
        (
            r"\b(?:newborn|baby|elderly)\b",
            r"\bfreezing\b",
            r"\bflood(?:ed|ing)?\b",
            r"\boverheat(?:ing|ed)?\b",
        ),
    ),
    CueGroup(
        "urgent",
        "deadline within hours",
        (r"\btonight\b", r"\bin (?:an|one|two|three|\d+) hours?\b"),
    ),
    CueGroup("urgent", "financial harm", (r"\boverdrawn\b",)),
    CueGroup(
        "high",
        "locked out",
        (
            r"\bcan(?:'?t|not) (?:log|sign) ?in\b",
            r"\bcan(?:'?t|not) (?:get into|access)\b",
            r"\blocked out\b",
        ),
    ),
    CueGroup(
        "high",
        "money taken wrongly",
        (r"\bdispute\b", r"\bchargeback\b", r"\b(?:don'?t|do not) recogni[sz]e\b"),
    ),
    CueGroup(
        "high",
        "goods lost",
        (r"\bnever (?:arrives?|arrived|came)\b", r"\bnot received\b", r"\bstolen\b"),
    ),
    CueGroup("high", "deadline within a day", (r"\btoday\b", r"\btomorrow\b")),
    CueGroup("high", "service stopped", (r"\bsuspended\b", r"\bstuck\b")),
    CueGroup(
        "low",
        "asks a question rather than reporting a problem",
        (
            r"^\s*(?:how|is|are|do|does|can|could|which|what|where|would)\b",
            r"\bis (?:it|there) (?:possible|a way)\b",
            r"\bwhere (?:can|do) i\b",
            r"\bbefore i buy\b",
        ),
    ),
    CueGroup("low", "says there is no hurry", (r"\bno (?:rush|hurry)\b",)),
)
"""The urgency lexicon, written from the labelled examples' wording and checked on the
held-out tickets of ``agents/data/triage_holdout.json`` (see bench/quality.py)."""

_COMPILED_CUES = [
    (group, [re.compile(pattern, re.IGNORECASE | re.MULTILINE) for pattern in group.patterns])
    for group in URGENCY_CUES
]


@dataclass(frozen=True)
class UrgencyCue:
    """Words of a ticket that argue for an urgency level."""

    urgency: Urgency
    phrase: str
    """The text that matched, as written in the ticket."""
    reason: str


def find_urgency_cues(text: str) -> list[UrgencyCue]:
    """The urgency cues in ``text``, in lexicon order; each pattern counts at most once.

    A ticket that asks a question but also says "immediately" is not relaxed, so "low"
    cues only count when there is no "high" or "urgent" cue.
    """
    text = text.replace("\u2019", "'")  # typographic apostrophes: "can\u2019t"
    cues = []
    for group, patterns in _COMPILED_CUES:
        for pattern in patterns:
            match = pattern.search(text)
            if match:
                phrase = " ".join(match.group(0).split())
                cues.append(UrgencyCue(group.urgency, phrase, group.reason))
    if any(cue.urgency in ("high", "urgent") for cue in cues):
        cues = [cue for cue in cues if cue.urgency != "low"]
    return cues


def weigh_urgency(
    votes: Mapping[Urgency, float], cues: Sequence[UrgencyCue]
) -> dict[Urgency, float]:
    """Each level's score: its share of the neighbour vote plus ``CUE_WEIGHT`` per cue.

    Levels come in the order of ``votes`` (nearest example first), then the others, so a
    tie goes to the closer example as in the category vote. Without cues the winner is
    the vote's.
    """
    total = sum(votes.values())
    order = [*votes, *(u for u in URGENCIES if u not in votes)]
    scores = {u: votes.get(u, 0.0) / total if total > 0 else 0.0 for u in order}
    for cue in cues:
        scores[cue.urgency] += CUE_WEIGHT
    return scores


@dataclass(frozen=True)
class Decision:
    """What the vote decided and the evidence behind it."""

    category: str
    urgency: Urgency
    confidence: float
    """The winning category's share of the similarity-weighted vote."""
    category_votes: dict[str, float]
    urgency_votes: dict[Urgency, float]
    nearest: list[NearestExample]
    urgency_cues: list[UrgencyCue] = field(default_factory=list)
    urgency_scores: dict[Urgency, float] = field(default_factory=dict)
    """Vote shares plus cue weights (``weigh_urgency``); the highest is ``urgency``."""


def classify(
    query: Vectors, examples: Examples, *, k: int = K, cues: Sequence[UrgencyCue] = ()
) -> Decision:
    """Similarity-weighted k-nearest-neighbour vote for category and, separately, urgency.

    ``cues`` (from ``find_urgency_cues`` on the ticket's text) add to the urgency vote.
    """
    if not examples.tickets:
        raise ValueError("cannot classify without labelled examples")
    similarities = examples.vectors @ query
    # A stable sort keeps ties in data order, so the same input always gives the same answer.
    order = np.argsort(-similarities, kind="stable")[:k]
    nearest = [
        NearestExample(
            id=examples.tickets[i].id,
            similarity=round(float(similarities[i]), 4),
            category=examples.tickets[i].category,
            urgency=examples.tickets[i].urgency,
        )
        for i in order
    ]
    # Examples pointing away from the query carry no evidence, rather than negative votes.
    weights = [max(n.similarity, 0.0) for n in nearest]
    category_votes = _tally([n.category for n in nearest], weights)
    urgency_votes = _tally([n.urgency for n in nearest], weights)
    category = _winner(category_votes)
    urgency_scores = weigh_urgency(urgency_votes, cues)
    urgency = _winner(urgency_scores)
    total = sum(category_votes.values())
    confidence = category_votes[category] / total if total > 0 else 0.0
    return Decision(
        category=category,
        urgency=urgency,
        confidence=min(max(confidence, 0.0), 1.0),
        category_votes=category_votes,
        urgency_votes=urgency_votes,
        nearest=nearest,
        urgency_cues=list(cues),
        urgency_scores=urgency_scores,
    )


def _tally(labels: Sequence[Label], weights: Sequence[float]) -> dict[Label, float]:
    votes: dict[Label, float] = {}
    for label, weight in zip(labels, weights, strict=True):
        votes[label] = votes.get(label, 0.0) + weight
    return votes


def _winner(votes: dict[Label, float]) -> Label:
    # Dicts keep insertion order and labels were inserted nearest first, so on equal weight
    # the label of the closer example wins.
    return max(votes, key=lambda label: votes[label])


@dataclass(frozen=True)
class TriageIndex:
    """The labelled examples embedded once per worker, plus the embedder for queries."""

    examples: Examples
    embedder: Embedder

    def embed(self, ticket: Ticket) -> Vectors:
        """The ticket's embedding, built from the same text as the examples'."""
        vector: Vectors = self.embedder.embed([ticket_text(ticket.subject, ticket.body)])[0]
        return vector

    def classify(self, ticket: Ticket) -> Decision:
        """The neighbour vote on the ticket's embedding, with the urgency cues of its text."""
        cues = find_urgency_cues(ticket_text(ticket.subject, ticket.body))
        return classify(self.embed(ticket), self.examples, cues=cues)


def ticket_text(subject: str, body: str) -> str:
    """The text embedded for a ticket: subject and body."""
    return f"{subject}\n{body}"


def load_examples() -> list[LabelledTicket]:
    """The labelled example tickets shipped with this package."""
    return TypeAdapter(list[LabelledTicket]).validate_json(read_text("triage_examples.json"))


@agent("triage", version="1", description="Category and urgency from nearest labelled tickets.")
def triage(ticket: Ticket, ctx: AgentContext) -> AgentResult[Triage]:
    """Classify a ticket by a similarity-weighted vote of its nearest labelled examples."""
    index = ctx.resource(TriageIndex)
    decision = index.classify(ticket)
    agreeing = sum(1 for n in decision.nearest if n.category == decision.category)
    top = decision.nearest[0]
    ctx.note(
        f"{agreeing} of {len(decision.nearest)} nearest examples are {decision.category} "
        f"(top similarity {top.similarity:.2f}, {top.id})"
    )
    ctx.note(f"category vote {_shares(decision.category_votes)}")
    ctx.note(f"urgency {decision.urgency}: {_urgency_evidence(decision)}")
    if top.similarity <= 0:
        ctx.note("no example shares vocabulary with this ticket; the vote carries no evidence")
    output = Triage(category=decision.category, urgency=decision.urgency, nearest=decision.nearest)
    return AgentResult(output, confidence=decision.confidence)


def _urgency_evidence(decision: Decision) -> str:
    vote = f"neighbour vote {_shares(decision.urgency_votes)}"
    if not decision.urgency_cues:
        return f"{vote}; no urgency cues in the wording"
    cues = ", ".join(f'"{c.phrase}" ({c.urgency}: {c.reason})' for c in decision.urgency_cues)
    ranked = sorted(decision.urgency_scores.items(), key=lambda item: -item[1])
    scores = ", ".join(f"{label} {score:.2f}" for label, score in ranked)
    return f"{vote}; cues {cues}, each +{CUE_WEIGHT} -> {scores}"


def _shares(votes: Mapping[Label, float]) -> str:
    total = sum(votes.values()) or 1.0
    ranked = sorted(votes.items(), key=lambda item: -item[1])
    return ", ".join(f"{label} {weight / total:.0%}" for label, weight in ranked)


@triage.setup
def build_index(env: AgentEnvironment) -> TriageIndex:
    """Embed the labelled examples once per worker."""
    tickets = load_examples()
    vectors = env.embedder.embed([ticket_text(t.subject, t.body) for t in tickets])
    return TriageIndex(Examples(tickets, vectors), env.embedder)
