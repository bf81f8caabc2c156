"""The ``reply`` capability: a draft answer built from the ticket, its triage and articles.

Composition is template-based and deterministic: a greeting, an acknowledgement chosen by
category and urgency, up to three help articles worth reading, and a closing. ``compose``
is pure, so every wording decision is tested without the SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, field_validator

from agents.knowledge_base import Article
from waypost import AgentContext, AgentResult, agent

SIGNATURE = "Best regards,\nLumen Home Support"

MAX_SUGGESTIONS = 3
RELEVANT_SCORE = 0.25
"""Below this similarity an article is no better than chance with the hashing embedder."""
GOOD_SCORE = 0.45
"""At or above this similarity the best article is very likely on topic."""

ACKNOWLEDGEMENTS = {
    "billing": "Thank you for contacting us about your billing. I understand how worrying "
    "it is when a charge on your account doesn't look right.",
    "account_access": "Thank you for reaching out about access to your account. Being "
    "locked out is stressful, especially when your home devices depend on it.",
    "technical_issue": "Thank you for letting us know about the problem with your device, "
    "and I'm sorry it isn't working as it should.",
    "shipping": "Thank you for getting in touch about your delivery. I know you're waiting "
    "for your order, so let's get this sorted out.",
    "refund_request": "Thank you for your message about a refund. I understand you'd like "
    "your money back, and we'll make sure your request is handled.",
    "product_question": "Thank you for your question about our products. I'm happy to help.",
}
GENERIC_ACKNOWLEDGEMENT = "Thank you for contacting us, and for the details in your message."

URGENCY_LINES = {
    "urgent": "I'm very sorry for the disruption this is causing. We have marked your ticket "
    "as urgent, and a member of our team will follow up with you within the hour.",
    "high": "We're treating this as a priority and will get back to you today.",
    "normal": "We'll follow up within one business day if anything else is needed.",
    "low": "There's no rush on your side; the information below should answer your question.",
}


class ReplyRequest(BaseModel):
    """Input of ``reply``: the ticket, how it was triaged and the articles found for it."""

    subject: str
    body: str
    customer: str | None = None
    category: str
    urgency: str
    articles: list[Article] = []

    @field_validator("articles", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        # A knowledge step that found nothing may hand over null rather than a list.
        return [] if value is None else value


class DraftReply(BaseModel):
    """Output of ``reply``: the draft a reviewer edits or approves."""

    subject: str
    body: str
    cited_articles: list[str]


@dataclass(frozen=True)
class Composition:
    """A composed draft with how sure the composer is and why."""

    reply: DraftReply
    confidence: float
    notes: list[str] = field(default_factory=list)


def compose(request: ReplyRequest) -> Composition:
    """Build the draft reply, its confidence and the reasoning notes (no I/O)."""
    notes: list[str] = []
    acknowledgement = ACKNOWLEDGEMENTS.get(request.category)
    if acknowledgement is None:
        notes.append(f"unknown category {request.category!r}: generic acknowledgement")
        acknowledgement = GENERIC_ACKNOWLEDGEMENT
    urgency = request.urgency if request.urgency in URGENCY_LINES else "normal"
    if urgency != request.urgency:
        notes.append(f"unknown urgency {request.urgency!r}: answered as normal")

    ranked = sorted(_unique(request.articles), key=lambda a: a.score, reverse=True)
    cited = [a for a in ranked if a.score >= RELEVANT_SCORE][:MAX_SUGGESTIONS]
    best = ranked[0].score if ranked else None
    if cited:
        notes.append("suggested " + ", ".join(f"{a.id} ({a.score:.2f})" for a in cited))
        weak = sum(1 for a in ranked if a.score < RELEVANT_SCORE)
        if weak:
            notes.append(f"left out {weak} article(s) scoring below {RELEVANT_SCORE}")
    elif best is None:
        notes.append("no articles were found; the draft promises a personal follow-up")
    else:
        notes.append(
            f"best article scored {best:.2f} (< {RELEVANT_SCORE}): none suggested, "
            "the draft promises a personal follow-up"
        )

    paragraphs = [
        _greeting(request.customer),
        f"{acknowledgement} {URGENCY_LINES[urgency]}",
        _suggestions(cited),
        "If this doesn't solve it, just reply to this email and we'll take it from there.",
        SIGNATURE,
    ]
    known_category = request.category in ACKNOWLEDGEMENTS
    confidence = _confidence(cited[0].score if cited else None, known_category=known_category)
    notes.append(f"confidence {confidence:.2f} from the best article score and the category")
    reply = DraftReply(
        subject=_reply_subject(request.subject),
        body="\n\n".join(paragraphs),
        cited_articles=[a.id for a in cited],
    )
    return Composition(reply=reply, confidence=confidence, notes=notes)


def _confidence(best_cited: float | None, *, known_category: bool) -> float:
    # The template wording is always sound; what can be wrong is whether the suggestions
    # answer the ticket, so confidence follows the best suggested article's similarity.
    if best_cited is None:
        confidence = 0.35
    else:
        progress = (best_cited - RELEVANT_SCORE) / (GOOD_SCORE - RELEVANT_SCORE)
        confidence = 0.5 + 0.4 * min(max(progress, 0.0), 1.0)
    if not known_category:
        confidence *= 0.8
    return round(confidence, 3)


def _unique(articles: list[Article]) -> list[Article]:
    seen: set[str] = set()
    unique = []
    for article in articles:
        if article.id not in seen:
            seen.add(article.id)
            unique.append(article)
    return unique


def _greeting(customer: str | None) -> str:
    # Collapsing whitespace keeps a name with line breaks from reshaping the letter; an
    # e-mail address is not a name to greet someone by.
    name = " ".join((customer or "").split())[:100]
    if not name or "@" in name:
        return "Hello,"
    return f"Hi {name},"


def _suggestions(articles: list[Article]) -> str:
    if not articles:
        return (
            "I couldn't find a help article that covers this exactly, so a member of our "
            "team will look into it personally."
        )
    lead = "This article should help:" if len(articles) == 1 else "These articles should help:"
    items = [f"- {a.title}: {a.summary}\n  {a.url}" for a in articles]
    return "\n".join([lead, *items])


def _reply_subject(subject: str) -> str:
    subject = " ".join(subject.split())
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


@agent("reply", version="1", description="A draft reply from the ticket, triage and articles.")
def reply(request: ReplyRequest, ctx: AgentContext) -> AgentResult[DraftReply]:
    """Compose a draft reply for a reviewer."""
    composition = compose(request)
    for note in composition.notes:
        ctx.note(note)
    return AgentResult(composition.reply, confidence=composition.confidence)
