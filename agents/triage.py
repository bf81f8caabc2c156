"""The ``triage`` capability: category and urgency from the nearest labelled tickets.

The ticket is embedded and compared with about 150 hand-labelled example tickets; the k
most similar examples vote, each with a weight equal to its similarity.
The vote itself (``classify``) is a pure function of vectors and labels, so it is tested
without the SDK, a database or an embedder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
from pydantic import BaseModel, Field, TypeAdapter

from agents.data import read_text
from waypost import AgentContext, AgentEnvironment, AgentResult, agent
from waypost.embeddings import Embedder, Vectors

Urgency = Literal["low", "normal", "high", "urgent"]
Label = TypeVar("Label", bound=str)

K = 7
"""How many nearest examples vote: odd, and small next to the ~20 examples per category."""


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
class Decision:
    """What the vote decided and the evidence behind it."""

    category: str
    urgency: Urgency
    confidence: float
    """The winning category's share of the similarity-weighted vote."""
    category_votes: dict[str, float]
    urgency_votes: dict[Urgency, float]
    nearest: list[NearestExample]


def classify(query: Vectors, examples: Examples, *, k: int = K) -> Decision:
    """Similarity-weighted k-nearest-neighbour vote for category and, separately, urgency."""
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
    urgency = _winner(urgency_votes)
    total = sum(category_votes.values())
    confidence = category_votes[category] / total if total > 0 else 0.0
    return Decision(
        category=category,
        urgency=urgency,
        confidence=min(max(confidence, 0.0), 1.0),
        category_votes=category_votes,
        urgency_votes=urgency_votes,
        nearest=nearest,
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
    decision = classify(index.embed(ticket), index.examples)
    agreeing = sum(1 for n in decision.nearest if n.category == decision.category)
    top = decision.nearest[0]
    ctx.note(
        f"{agreeing} of {len(decision.nearest)} nearest examples are {decision.category} "
        f"(top similarity {top.similarity:.2f}, {top.id})"
    )
    ctx.note(f"category vote {_shares(decision.category_votes)}")
    ctx.note(f"urgency {decision.urgency}: vote {_shares(decision.urgency_votes)}")
    if top.similarity <= 0:
        ctx.note("no example shares vocabulary with this ticket; the vote carries no evidence")
    output = Triage(category=decision.category, urgency=decision.urgency, nearest=decision.nearest)
    return AgentResult(output, confidence=decision.confidence)


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
