"""Text embeddings behind one small interface.

The default ``HashingEmbedder`` is deterministic and local (no model download): words and
word pairs are hashed into a fixed number of signed buckets, weighted by sub-linear term
frequency, and L2-normalised, so cosine similarity rewards shared vocabulary. A
sentence-transformers model can implement the same Protocol later.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")  # letters and digits of any script
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "which",
        "will",
        "with",
        "you",
        "your",
        "can",
        "could",
        "would",
        "should",
        "do",
        "does",
        "did",
        "not",
        "no",
        "been",
        "am",
    ]
)


class Embedder(Protocol):
    """Turns texts into unit-length vectors of a fixed dimension."""

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One row per text, each of unit length (or zero for empty text)."""
        ...


class HashingEmbedder:
    """Deterministic bag-of-words embedder (feature hashing of words and word pairs)."""

    def __init__(self, dimension: int = 256) -> None:
        self._dimension = dimension

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        return self._dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit-length row per text."""
        matrix = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature, count in _features(text).items():
                bucket, sign = self._bucket(feature)
                matrix[row, bucket] += sign * (1.0 + np.log(count))
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        np.divide(matrix, norms, out=matrix, where=norms > 0)
        return matrix

    def _bucket(self, feature: str) -> tuple[int, float]:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return value % self._dimension, 1.0 if (value >> 63) & 1 else -1.0


def _features(text: str) -> Counter[str]:
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
    stems = [_stem(w) for w in words]
    features = Counter(stems)
    features.update(f"{a} {b}" for a, b in itertools.pairwise(stems))
    return features


def _stem(word: str) -> str:
    """A light suffix strip so 'charged', 'charges' and 'charge' share a bucket."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def cosine(a: Vectors, b: Vectors) -> npt.NDArray[np.float32]:
    """Cosine similarity of every row of ``a`` with every row of ``b`` (rows unit length)."""
    return a @ b.T
