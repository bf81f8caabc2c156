"""The ``reply`` capability: a draft answer built from the ticket, its triage and articles.

Composition is template-based and deterministic: a greeting, an acknowledgement chosen by
category and urgency, a refund promise when the ticket asks for one and names the amount,
up to three help articles worth reading, and a closing. ``compose`` is pure, so every
wording decision is tested without the SDK.

A draft that promises a refund above the policy limit (``REFUND_LIMIT``, or the goal's
``refund_limit``) asks for a human, whatever its confidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, field_validator

from agents.knowledge_base import Article
from agents.money import Money, find_amounts, format_money
from waypost import AgentContext, AgentResult, agent

SIGNATURE = "Best regards,\nLumen Home Support"

MAX_SUGGESTIONS = 3
RELEVANT_SCORE = 0.25
"""Below this similarity an article is no better than chance with the hashing embedder."""
GOOD_SCORE = 0.45
"""At or above this similarity the best article is very likely on topic."""

REFUND_LIMIT = Decimal("100.00")
"""The largest refund a draft may promise without a person's approval, in the account's
currency (a goal's ``refund_limit`` replaces it). Amounts are not converted: the ticket's
amount is taken to be in the account's currency."""
REFUND_CATEGORIES = ("refund_request", "billing")
"""Only tickets triaged as one of these get a refund promise."""
_REFUND_CUE = re.compile(r"\b(?:refund(?:s|ed)?|money back|reimburse(?:d|ment)?)\b", re.IGNORECASE)

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
    refund_limit: Money = Field(default=REFUND_LIMIT, ge=0)

    @field_validator("articles", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        # A knowledge step that found nothing may hand over null rather than a list.
        return [] if value is None else value

    @field_validator("refund_limit", mode="before")
    @classmethod
    def _none_is_default(cls, value: Any) -> Any:
        return REFUND_LIMIT if value is None else value


class RefundPromise(BaseModel):
    """A refund the draft promises, and the limit it was checked against."""

    amount: Money
    currency: str
    limit: Money
    within_limit: bool


class DraftReply(BaseModel):
    """Output of ``reply``: the draft a reviewer edits or approves."""

    subject: str
    body: str
    cited_articles: list[str]
    refund: RefundPromise | None = None


@dataclass(frozen=True)
class Composition:
    """A composed draft with how sure the composer is and why."""

    reply: DraftReply
    confidence: float
    notes: list[str] = field(default_factory=list)
    escalate: str | None = None
    """Why a person must read the draft before it is sent, if they must."""


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

    refund = refund_promise(request)
    escalate = None
    if refund is not None:
        promised = format_money(refund.amount, refund.currency)
        limit = format_money(refund.limit, refund.currency)
        if refund.within_limit:
            notes.append(f"the draft promises the refund of {promised} asked for (limit {limit})")
        else:
            notes.append(f"the draft promises the refund of {promised} asked for: above {limit}")
            escalate = (
                f"the draft promises a refund of {promised}, above the policy limit of "
                f"{limit} for refunds without approval; check the claim before the reply "
                "is sent"
            )

    paragraphs = [
        _greeting(request.customer),
        f"{acknowledgement} {URGENCY_LINES[urgency]}",
        *([_refund_paragraph(refund)] if refund is not None else []),
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
        refund=refund,
    )
    return Composition(reply=reply, confidence=confidence, notes=notes, escalate=escalate)


def refund_promise(request: ReplyRequest) -> RefundPromise | None:
    """The refund the draft promises: for a billing or refund ticket that asks for its
    money back and names an amount, the largest amount named (so the limit check errs
    towards asking a person); otherwise none."""
    if request.category not in REFUND_CATEGORIES:
        return None
    text = f"{request.subject}\n{request.body}"
    if not _REFUND_CUE.search(text):
        return None
    amounts = find_amounts(text)
    if not amounts:
        return None
    largest = max(amounts, key=lambda a: a.value)
    return RefundPromise(
        amount=largest.value,
        currency=largest.currency,
        limit=request.refund_limit,
        within_limit=largest.value <= request.refund_limit,
    )


def _refund_paragraph(refund: RefundPromise) -> str:
    return (
        f"I've asked our billing team to refund {format_money(refund.amount, refund.currency)} "
        "to your original payment method; refunds usually show on your statement within 5 "
        "to 10 business days."
    )


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
    return AgentResult(
        composition.reply, confidence=composition.confidence, escalate=composition.escalate
    )
