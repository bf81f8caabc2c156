"""The triage agent: the pure vote on hand-made vectors, then the shipped examples."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from agents.triage import (
    CUE_WEIGHT,
    URGENCY_CUES,
    Examples,
    LabelledTicket,
    Ticket,
    TriageIndex,
    UrgencyCue,
    build_index,
    classify,
    find_urgency_cues,
    load_examples,
    triage,
    weigh_urgency,
)
from tests.agents.environment import Environment, context


def _examples(*rows: tuple[str, str, list[float]]) -> Examples:
    tickets = [
        LabelledTicket.model_validate(
            {"id": f"e{i}", "subject": "s", "body": "b", "category": category, "urgency": urgency}
        )
        for i, (category, urgency, _) in enumerate(rows)
    ]
    vectors = np.array([vector for _, _, vector in rows], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return Examples(tickets, vectors)


QUERY = np.array([1.0, 0.0, 0.0], dtype=np.float32)


def test_one_close_example_outweighs_two_distant_ones() -> None:
    examples = _examples(
        ("billing", "high", [1.0, 0.0, 0.0]),  # similarity 1.0
        ("shipping", "low", [0.3, 1.0, 0.0]),  # about 0.29 each
        ("shipping", "low", [0.3, 0.0, 1.0]),
    )

    decision = classify(QUERY, examples, k=3)

    # A plain majority would say shipping; the similarity weights say billing.
    assert decision.category == "billing"
    assert decision.urgency == "high"
    assert decision.confidence == pytest.approx(1.0 / (1.0 + 2 * 0.2873), abs=1e-3)
    assert [n.id for n in decision.nearest] == ["e0", "e1", "e2"]


def test_only_the_k_nearest_vote() -> None:
    examples = _examples(
        ("billing", "normal", [0.9, 0.1, 0.0]),
        ("shipping", "low", [0.0, 1.0, 0.0]),
        ("shipping", "low", [0.0, 0.0, 1.0]),
        ("shipping", "low", [0.1, 1.0, 0.0]),
    )

    decision = classify(QUERY, examples, k=1)

    assert decision.category == "billing"
    assert decision.confidence == 1.0
    assert len(decision.nearest) == 1


def test_category_and_urgency_are_voted_separately() -> None:
    examples = _examples(
        ("billing", "low", [1.0, 0.1, 0.0]),  # similarity 0.995
        ("billing", "low", [1.0, 0.0, 0.1]),  # 0.995
        ("refund_request", "urgent", [1.0, 0.2, 0.2]),  # 0.962
        ("refund_request", "urgent", [1.0, 0.3, 0.0]),  # 0.958
        ("refund_request", "normal", [1.0, 0.0, 0.3]),  # 0.958
    )

    decision = classify(QUERY, examples, k=5)

    # Three refund examples outvote two billing ones, yet "low" (1.99) beats "urgent" (1.92).
    assert decision.category == "refund_request"
    assert decision.urgency == "low"
    assert decision.confidence == pytest.approx(2.878 / 4.868, abs=1e-3)


def test_examples_pointing_away_carry_no_weight() -> None:
    examples = _examples(
        ("billing", "normal", [0.5, 1.0, 0.0]),
        ("shipping", "low", [-1.0, 0.1, 0.0]),
        ("shipping", "low", [-1.0, 0.0, 0.1]),
    )

    decision = classify(QUERY, examples, k=3)

    assert decision.category == "billing"
    assert decision.confidence == 1.0
    assert decision.category_votes["shipping"] == 0.0


def test_no_evidence_means_zero_confidence() -> None:
    examples = _examples(("billing", "normal", [0.0, 1.0, 0.0]), ("shipping", "low", [0, 0, 1]))

    decision = classify(np.zeros(3, dtype=np.float32), examples, k=2)

    assert decision.confidence == 0.0
    assert decision.category == "billing"  # the nearest (first) example breaks the tie


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("URGENT: cameras down\nWe need help immediately!!", ["urgent", "urgent", "urgent"]),
        ("Someone hacked my account", ["urgent"]),
        ("The alarm hub failed and my elderly mother has no alarm tonight", ["urgent"] * 3),
        ("I can't log in since yesterday", ["high"]),
        ("I can\u2019t sign in", ["high"]),  # a typographic apostrophe
        ("I cannot access my account", ["high"]),
        ("Tracking says delivered but the parcel was stolen", ["high"]),
        ("How do I change my display name?", ["low"]),
        ("Paying yearly\nIs there a way to pay once a year?", ["low", "low"]),
        ("No rush, but the invoice shows the wrong plan", ["low"]),
        ("The invoice shows the wrong plan", []),
    ],
)
def test_urgency_cues_in_the_wording(text: str, levels: list[str]) -> None:
    assert [cue.urgency for cue in find_urgency_cues(text)] == levels


def test_a_cue_reports_the_words_as_written_and_why_they_count() -> None:
    assert find_urgency_cues("Please help   ASAP") == [
        UrgencyCue(urgency="urgent", phrase="ASAP", reason="asks for speed")
    ]


def test_a_repeated_cue_counts_once() -> None:
    assert len(find_urgency_cues("urgent urgent URGENT")) == 1


def test_a_question_is_not_relaxed_when_it_also_says_it_is_urgent() -> None:
    cues = find_urgency_cues("Can you lock my account right now? It was hacked.")

    assert [cue.phrase for cue in cues] == ["right now", "hacked"]


def test_every_cue_pattern_is_a_valid_lowercase_regex() -> None:
    for group in URGENCY_CUES:
        assert group.urgency in {"low", "high", "urgent"}  # "normal" is the absence of cues
        for pattern in group.patterns:
            assert pattern == pattern.lower(), pattern


def test_urgency_scores_are_vote_shares_plus_cue_weights() -> None:
    high_cue = UrgencyCue(urgency="high", phrase="today", reason="deadline within a day")

    scores = weigh_urgency({"normal": 3.0, "low": 1.0}, [high_cue])

    # Voted levels first (nearest first), then the others.
    assert list(scores) == ["normal", "low", "high", "urgent"]
    assert scores == pytest.approx({"normal": 0.75, "low": 0.25, "high": CUE_WEIGHT, "urgent": 0.0})


def test_without_votes_the_cues_decide() -> None:
    cue = UrgencyCue(urgency="urgent", phrase="emergency", reason="asks for speed")

    assert weigh_urgency({}, [cue]) == {"low": 0, "normal": 0, "high": 0, "urgent": CUE_WEIGHT}


def test_a_cue_tips_a_split_vote() -> None:
    examples = _examples(
        ("billing", "normal", [1.0, 0.0, 0.0]),  # similarity 1.0
        ("billing", "high", [1.0, 0.2, 0.0]),  # 0.98
    )
    cue = UrgencyCue(urgency="high", phrase="dispute", reason="money taken wrongly")

    without = classify(QUERY, examples, k=2)
    with_cue = classify(QUERY, examples, k=2, cues=[cue])

    assert without.urgency == "normal"
    assert with_cue.urgency == "high"
    assert with_cue.urgency_cues == [cue]
    assert with_cue.urgency_scores["high"] == pytest.approx(0.98 / 1.98 + CUE_WEIGHT, abs=1e-3)
    # Cues speak to urgency only: the category vote is untouched.
    assert (with_cue.category, with_cue.confidence) == (without.category, without.confidence)


def test_one_cue_does_not_overturn_a_unanimous_vote() -> None:
    examples = _examples(("billing", "low", [1.0, 0.0, 0.0]), ("billing", "low", [1, 0.1, 0]))
    cue = UrgencyCue(urgency="urgent", phrase="asap", reason="asks for speed")

    assert classify(QUERY, examples, k=2, cues=[cue]).urgency == "low"
    assert classify(QUERY, examples, k=2, cues=[cue, cue, cue]).urgency == "urgent"


def test_examples_and_vectors_must_line_up() -> None:
    with pytest.raises(ValueError, match="2 tickets but 1 vectors"):
        Examples(load_examples()[:2], np.zeros((1, 3), dtype=np.float32))


def test_shipped_examples_cover_every_category_and_urgency() -> None:
    examples = load_examples()

    assert 100 <= len(examples) <= 200
    assert len({e.id for e in examples}) == len(examples)
    categories = Counter(e.category for e in examples)
    assert len(categories) == 6
    assert min(categories.values()) >= 20
    assert set(Counter(e.urgency for e in examples)) == {"low", "normal", "high", "urgent"}


@pytest.fixture(scope="module")
def index() -> TriageIndex:
    return build_index(Environment())


# Written for this test, not copied from the examples: (category, subject, body).
HELD_OUT = [
    (
        "billing",
        "Double charge on my credit card",
        "I was charged twice for the Premium plan this month, two payments of $14.99 on the "
        "same day. Please refund the duplicate charge.",
    ),
    (
        "account_access",
        "Can't log in to my account",
        "I forgot my password and the reset email never arrives. I've been locked out of my "
        "account since yesterday.",
    ),
    (
        "technical_issue",
        "Camera offline after router change",
        "I replaced my Wi-Fi router and now the camera shows offline in the app and won't "
        "reconnect to the network.",
    ),
    (
        "shipping",
        "Parcel hasn't arrived",
        "My order was shipped ten days ago but the tracking number still shows no updates and "
        "the parcel hasn't been delivered.",
    ),
    (
        "refund_request",
        "I want my money back",
        "I returned the smart lock two weeks ago because it didn't fit my door. When will I "
        "receive my refund?",
    ),
    (
        "product_question",
        "Does the doorbell work with Google Home?",
        "Before I buy: is the video doorbell compatible with Google Home, and can I see the "
        "live view on a Nest Hub?",
    ),
    (
        "billing",
        "Question about my invoice",
        "The invoice for our Business plan shows a different amount than the price on your "
        "website. Can you explain the charges?",
    ),
    (
        "account_access",
        "Two-factor code not working",
        "The two-factor authentication code from my authenticator app is rejected every time I "
        "try to sign in.",
    ),
    (
        "technical_issue",
        "App keeps crashing",
        "The app crashes every time I open the camera feed on my iPhone since the last update.",
    ),
    (
        "shipping",
        "Update my shipping address",
        "I moved last week. Can you change the delivery address on my order before it is shipped?",
    ),
    (
        "refund_request",
        "Return and refund request",
        "The thermostat isn't compatible with my boiler. I'd like to return it for a full "
        "refund, it's still in the box.",
    ),
    (
        "product_question",
        "Can I use the camera outdoors?",
        "Is the indoor camera weatherproof, or do I need the outdoor model for my garden? What "
        "is the difference in features?",
    ),
]


def test_held_out_tickets_are_mostly_classified_right(index: TriageIndex) -> None:
    wrong = []
    for category, subject, body in HELD_OUT:
        decision = index.classify(Ticket(subject=subject, body=body))
        if decision.category != category:
            wrong.append((subject, category, decision.category))

    assert len(wrong) <= 2, wrong


def test_a_plain_billing_ticket_is_billing_with_confidence(index: TriageIndex) -> None:
    ticket = Ticket(
        subject="Charged twice this month",
        body="My card was charged twice for my subscription. Please reverse the duplicate.",
    )

    decision = index.classify(ticket)

    assert decision.category == "billing"
    assert decision.confidence > 0.6


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        (
            "URGENT: all cameras offline at our warehouse",
            "Every camera at our warehouse went offline an hour ago and we have no security "
            "coverage right now. This is an emergency, we need help immediately.",
        ),
        (
            "Account hacked - please lock it now",
            "Someone changed my password and email. My account has been hacked and they can "
            "see my home cameras. Please lock it down immediately.",
        ),
    ],
)
def test_urgent_wording_is_urgent(index: TriageIndex, subject: str, body: str) -> None:
    decision = index.classify(Ticket(subject=subject, body=body))

    # The neighbour vote alone could only promise "urgent or high"; the cues settle it.
    assert decision.urgency == "urgent"


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("Receipts for my tax return", "Where can I download last year's receipts? No rush."),
        ("Can I pay with PayPal?", "I would rather not keep a card on file."),
    ],
)
def test_calm_questions_are_low(index: TriageIndex, subject: str, body: str) -> None:
    assert index.classify(Ticket(subject=subject, body=body)).urgency == "low"


def test_handler_reports_the_vote(index: TriageIndex) -> None:
    ctx = context("triage", {TriageIndex: index})
    ticket = Ticket(
        subject="Where is my parcel?",
        body="The tracking for my order hasn't changed in a week and the delivery is late.",
    )

    result = triage.run(ticket, ctx)

    assert result.output.category == "shipping"
    assert len(result.output.nearest) == 7
    similarities = [n.similarity for n in result.output.nearest]
    assert similarities == sorted(similarities, reverse=True)
    agreeing = sum(1 for n in result.output.nearest if n.category == "shipping")
    assert ctx.notes[0].startswith(f"{agreeing} of 7 nearest examples are shipping")
    assert ctx.notes[2].startswith(f"urgency {result.output.urgency}: neighbour vote ")
    assert 0.0 < result.confidence <= 1.0
    assert triage.input_model is Ticket


def test_handler_names_the_urgency_cues_it_heard(index: TriageIndex) -> None:
    ctx = context("triage", {TriageIndex: index})
    ticket = Ticket(
        subject="Account hacked - please lock it now",
        body="Someone is watching my cameras. Please lock my account immediately.",
    )

    result = triage.run(ticket, ctx)

    assert result.output.urgency == "urgent"
    note = ctx.notes[2]
    assert note.startswith("urgency urgent: neighbour vote ")
    assert '"hacked" (urgent: security compromised)' in note
    assert '"immediately" (urgent: asks for speed)' in note
    assert f"each +{CUE_WEIGHT} -> urgent " in note


def test_handler_without_setup_says_what_is_missing() -> None:
    with pytest.raises(LookupError, match="TriageIndex"):
        triage.run(Ticket(subject="x", body="y"), context("triage"))
