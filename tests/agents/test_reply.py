"""The reply agent: pure composition of the draft, then the handler."""

from __future__ import annotations

import pytest

from agents.knowledge_base import Article
from agents.reply import (
    ACKNOWLEDGEMENTS,
    GENERIC_ACKNOWLEDGEMENT,
    MAX_SUGGESTIONS,
    SIGNATURE,
    ReplyRequest,
    compose,
    reply,
)
from tests.agents.environment import context


def _article(n: int, score: float) -> Article:
    return Article(
        id=f"kb-{n:03d}",
        title=f"Article {n}",
        summary=f"Summary of article {n}.",
        url=f"https://help.example/articles/{n}",
        score=score,
    )


def _request(**overrides: object) -> ReplyRequest:
    values: dict[str, object] = {
        "subject": "Charged twice",
        "body": "I was charged twice this month.",
        "customer": "Maria Lopez",
        "category": "billing",
        "urgency": "normal",
        "articles": [_article(1, 0.52), _article(2, 0.31)],
    }
    values.update(overrides)
    return ReplyRequest.model_validate(values)


def test_draft_greets_acknowledges_suggests_and_signs() -> None:
    composition = compose(_request())
    body = composition.reply.body

    assert composition.reply.subject == "Re: Charged twice"
    assert body.startswith("Hi Maria Lopez,\n\n")
    assert ACKNOWLEDGEMENTS["billing"] in body
    assert "within one business day" in body
    for n in (1, 2):
        assert f"Article {n}: Summary of article {n}." in body
        assert f"https://help.example/articles/{n}" in body
    assert body.index("Article 1") < body.index("Article 2")
    assert body.endswith(SIGNATURE)
    assert composition.reply.cited_articles == ["kb-001", "kb-002"]


def test_best_article_is_cited_first_whatever_the_input_order() -> None:
    composition = compose(_request(articles=[_article(2, 0.3), _article(1, 0.6)]))

    assert composition.reply.cited_articles == ["kb-001", "kb-002"]


def test_at_most_three_suggestions_and_no_duplicates() -> None:
    articles = [
        _article(1, 0.6),
        _article(1, 0.6),
        *(_article(n, 0.5 - n / 100) for n in (2, 3, 4, 5)),
    ]

    composition = compose(_request(articles=articles))

    assert composition.reply.cited_articles == ["kb-001", "kb-002", "kb-003"]
    assert len(composition.reply.cited_articles) == MAX_SUGGESTIONS


def test_weak_articles_are_left_out_and_explained() -> None:
    composition = compose(_request(articles=[_article(1, 0.4), _article(2, 0.1)]))

    assert composition.reply.cited_articles == ["kb-001"]
    assert "This article should help:" in composition.reply.body
    assert "Article 2" not in composition.reply.body
    assert any("left out 1 article(s) scoring below 0.25" in note for note in composition.notes)


@pytest.mark.parametrize("articles", [[], None, [_article(1, 0.12)]])
def test_without_useful_articles_the_draft_promises_a_person(articles: object) -> None:
    composition = compose(_request(articles=articles))

    assert composition.reply.cited_articles == []
    assert "a member of our team will look into it personally" in composition.reply.body
    assert composition.confidence == pytest.approx(0.35)
    assert any("personal follow-up" in note for note in composition.notes)


def test_confidence_grows_with_the_best_article_score() -> None:
    confidences = [
        compose(_request(articles=[_article(1, score)])).confidence
        for score in (0.1, 0.25, 0.35, 0.45, 0.8)
    ]

    assert confidences == pytest.approx([0.35, 0.5, 0.7, 0.9, 0.9])


def test_unknown_category_gets_a_generic_acknowledgement_and_less_confidence() -> None:
    known = compose(_request())
    unknown = compose(_request(category="warranty_claim"))

    assert GENERIC_ACKNOWLEDGEMENT in unknown.reply.body
    assert unknown.confidence == pytest.approx(known.confidence * 0.8)
    assert any("unknown category 'warranty_claim'" in note for note in unknown.notes)


@pytest.mark.parametrize("category", sorted(ACKNOWLEDGEMENTS))
def test_each_category_has_its_own_acknowledgement(category: str) -> None:
    body = compose(_request(category=category)).reply.body

    assert ACKNOWLEDGEMENTS[category] in body
    others = [text for name, text in ACKNOWLEDGEMENTS.items() if name != category]
    assert not any(text in body for text in others)


def test_urgent_tickets_get_an_apology_and_a_fast_follow_up() -> None:
    urgent = compose(_request(urgency="urgent")).reply.body
    low = compose(_request(urgency="low")).reply.body

    assert "very sorry" in urgent
    assert "within the hour" in urgent
    assert "sorry" not in low
    assert "no rush" in low


def test_unknown_urgency_is_answered_as_normal() -> None:
    composition = compose(_request(urgency="critical"))

    assert "within one business day" in composition.reply.body
    assert any("unknown urgency 'critical'" in note for note in composition.notes)


@pytest.mark.parametrize(
    ("customer", "greeting"),
    [
        (None, "Hello,"),
        ("", "Hello,"),
        ("maria@example.com", "Hello,"),
        ("  Maria \n Lopez ", "Hi Maria Lopez,"),
    ],
)
def test_greeting(customer: str | None, greeting: str) -> None:
    assert compose(_request(customer=customer)).reply.body.split("\n\n")[0] == greeting


def test_reply_subject_is_not_prefixed_twice() -> None:
    assert compose(_request(subject="RE: Charged twice")).reply.subject == "RE: Charged twice"


def test_playbook_input_with_missing_customer_and_null_articles() -> None:
    request = ReplyRequest.model_validate(
        {"subject": "s", "body": "b", "category": "shipping", "urgency": "high", "articles": None}
    )

    assert request.customer is None
    assert request.articles == []


def test_handler_returns_the_composition_with_its_notes() -> None:
    ctx = context("reply")
    request = _request(urgency="urgent")

    result = reply.run(request, ctx)

    expected = compose(request)
    assert result.output == expected.reply
    assert result.confidence == expected.confidence
    assert ctx.notes == expected.notes
    assert reply.output_model.__name__ == "DraftReply"
