"""The hashing embedder: deterministic, unit length, and similar texts land close."""

from __future__ import annotations

import numpy as np
import pytest

from waypost.embeddings import DEFAULT_DIMENSION, PAIR_WEIGHT, HashingEmbedder, cosine

EMBEDDER = HashingEmbedder()


def test_every_text_gets_one_row_of_the_configured_dimension() -> None:
    vectors = HashingEmbedder(dimension=64).embed(["one", "two", "three"])

    assert vectors.shape == (3, 64)
    assert vectors.dtype == np.float32
    assert HashingEmbedder(dimension=64).dimension == 64
    assert EMBEDDER.dimension == DEFAULT_DIMENSION


def test_default_dimension_fits_a_pgvector_hnsw_index() -> None:
    # pgvector indexes at most 2000 dimensions; kb_articles.embedding has this length.
    assert 256 <= DEFAULT_DIMENSION <= 2000


@pytest.mark.parametrize("dimension", [0, -1])
def test_dimension_must_be_positive(dimension: int) -> None:
    with pytest.raises(ValueError, match="dimension must be positive"):
        HashingEmbedder(dimension)


def test_embedding_is_deterministic_across_calls_and_instances() -> None:
    text = "I was charged twice for my subscription"

    first = EMBEDDER.embed([text])
    again = HashingEmbedder().embed([text, "other"])[:1]

    np.testing.assert_array_equal(first, again)


def test_vectors_have_unit_length() -> None:
    vectors = EMBEDDER.embed(["refund my order", "a", "the package never arrived at all"])

    norms = np.linalg.norm(vectors, axis=1)

    # "a" is a stop word: an empty bag of words, so a zero vector.
    np.testing.assert_allclose(norms, [1.0, 0.0, 1.0], atol=1e-6)


@pytest.mark.parametrize("text", ["", "   ", "the and of", "!!! ???"])
def test_text_without_words_is_a_zero_vector(text: str) -> None:
    assert not EMBEDDER.embed([text]).any()


def test_similar_texts_are_closer_than_unrelated_ones() -> None:
    query, similar, unrelated = EMBEDDER.embed(
        [
            "I was charged twice on my credit card",
            "Double charge on my credit card this month",
            "How do I reset the password of my account",
        ]
    )

    similarity = cosine(query[None, :], np.stack([similar, unrelated]))[0]

    assert similarity[0] > similarity[1]
    assert similarity[0] > 0.2


def test_word_forms_share_a_stem() -> None:
    charged, charges, unrelated = EMBEDDER.embed(["charged", "charges", "password"])

    assert float(charged @ charges) == pytest.approx(1.0)
    assert float(charged @ unrelated) < 0.5


@pytest.mark.parametrize(
    "forms",
    [
        # The bare word used to keep its "e" while every inflection lost it.
        ["charge", "charges", "charged", "charging"],
        ["arrive", "arrives", "arrived", "arriving"],
        ["code", "codes"],
        ["issue", "issues", "issued"],
        # "ss" is not a plural ending: "address" used to lose an "s" that "addresses" kept.
        ["address", "addresses"],
        ["access", "accessed"],
        ["delivery", "deliveries"],
        ["battery", "batteries"],
        ["box", "boxes"],
    ],
)
def test_every_form_of_a_word_gets_the_same_vector(forms: list[str]) -> None:
    vectors = EMBEDDER.embed(forms)

    np.testing.assert_array_equal(vectors, np.repeat(vectors[:1], len(forms), axis=0))


@pytest.mark.parametrize(
    ("word", "shorter"),
    [("use", "us"), ("fee", "fe"), ("see", "se")],
)
def test_stemming_keeps_at_least_three_letters(word: str, shorter: str) -> None:
    # "use" and "see" keep their "e" (stripping it would leave two letters), so they do
    # not collide with the different words "us" and "se".
    a, b = EMBEDDER.embed([word, shorter])

    assert float(a @ b) < 0.999


def test_a_word_pair_weighs_less_than_a_word() -> None:
    pair, word = EMBEDDER.embed(["alpha beta", "alpha"])

    # Three features (alpha, beta, "alpha beta"), none of them colliding in this dimension.
    assert float(pair @ word) == pytest.approx(1 / np.sqrt(2 + PAIR_WEIGHT**2), abs=1e-6)


def test_case_does_not_matter() -> None:
    upper, lower = EMBEDDER.embed(["REFUND NOW", "refund now"])

    np.testing.assert_array_equal(upper, lower)


def test_word_order_matters_through_word_pairs() -> None:
    forward, backward = EMBEDDER.embed(["card credit declined", "declined credit card"])

    assert float(forward @ backward) < 0.999


def test_cosine_compares_every_row_with_every_row() -> None:
    vectors = EMBEDDER.embed(["alpha beta", "gamma delta", "alpha beta"])

    matrix = cosine(vectors, vectors)

    assert matrix.shape == (3, 3)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-6)
    assert matrix[0, 2] == pytest.approx(1.0)
    assert matrix[0, 1] == pytest.approx(matrix[1, 0])


def test_no_texts_give_an_empty_matrix() -> None:
    assert EMBEDDER.embed([]).shape == (0, DEFAULT_DIMENSION)


def test_seed_zero_is_the_default_hash_and_other_seeds_differ() -> None:
    text = ["I was charged twice for my subscription"]

    default = EMBEDDER.embed(text)

    np.testing.assert_array_equal(HashingEmbedder(seed=0).embed(text), default)
    np.testing.assert_array_equal(
        HashingEmbedder(seed=7).embed(text), HashingEmbedder(seed=7).embed(text)
    )
    assert not np.array_equal(HashingEmbedder(seed=7).embed(text), default)
    # Another hash function, same geometry: still unit length.
    assert float(np.linalg.norm(HashingEmbedder(seed=7).embed(text))) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [-1, 2**128])
def test_seed_must_fit_the_hash_salt(seed: int) -> None:
    with pytest.raises(ValueError, match="seed must be in"):
        HashingEmbedder(seed=seed)
