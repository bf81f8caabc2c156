"""The hashing embedder: deterministic, unit length, and similar texts land close."""

from __future__ import annotations

import numpy as np
import pytest

from waypost.embeddings import HashingEmbedder, cosine

EMBEDDER = HashingEmbedder()


def test_every_text_gets_one_row_of_the_configured_dimension() -> None:
    vectors = HashingEmbedder(dimension=64).embed(["one", "two", "three"])

    assert vectors.shape == (3, 64)
    assert vectors.dtype == np.float32
    assert HashingEmbedder(dimension=64).dimension == 64
    assert EMBEDDER.dimension == 256


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
    assert EMBEDDER.embed([]).shape == (0, 256)
