"""Text embeddings behind one small interface.

The default ``HashingEmbedder`` is deterministic and local (no model download): words and
word pairs are hashed into a fixed number of signed buckets, weighted by sub-linear term
frequency, and L2-normalised, so cosine similarity rewards shared vocabulary. A
sentence-transformers model can implement the same Protocol later.

The constants below were chosen with ``bench/quality.py`` (triage leave-one-out accuracy
and knowledge top-k hits on hand-written queries); re-run it after changing them.
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

DEFAULT_DIMENSION = 1536
"""Length of ``HashingEmbedder`` vectors unless configured otherwise.

Feature hashing folds every word and word pair into this many buckets, so a small
dimension makes unrelated words collide and look alike. ``bench/quality.py --sweep
256,512,1024,1536,2000 --seeds 8`` (means over 8 hash seeds): triage leave-one-out
category accuracy 0.66, 0.72, 0.75, 0.78, 0.77; knowledge top-1 hits 0.71, 0.78, 0.83,
0.85, 0.87. 1536 takes nearly all of the gain and stays below pgvector's limit of 2000
dimensions for an HNSW index (``kb_articles.embedding`` has this length). The cost is
small: 6 KB per stored vector, and embedding time does not depend on the dimension.
"""

PAIR_WEIGHT = 0.5
"""Weight of a word pair relative to a single word.

Pairs add word order ("card declined" vs "declined card") but rarely recur between two
short texts, so at full weight they mostly lengthen the vector and dilute the words two
texts share. At 0.5 instead of 1.0 (1536 dimensions, mean of 8 seeds): triage category
0.75 -> 0.78, knowledge top-1 0.82 -> 0.85.
"""

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

    def __init__(self, dimension: int = DEFAULT_DIMENSION, *, seed: int = 0) -> None:
        """``seed`` picks one of many independent hash functions (0 is the default).

        Every seed collides different features, so averaging a measurement over a few
        seeds separates the effect of a change from the luck of one set of collisions.
        Vectors of different seeds are not comparable.
        """
        if dimension < 1:
            raise ValueError(f"dimension must be positive, not {dimension}")
        if not 0 <= seed < 2**128:
            raise ValueError(f"seed must be in [0, 2**128), not {seed}")
        self._dimension = dimension
        # blake2b pads its salt with zero bytes, so seed 0 is the plain, unsalted hash.
        self._salt = seed.to_bytes(16, "little")

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
                weight = PAIR_WEIGHT if " " in feature else 1.0
                matrix[row, bucket] += sign * weight * (1.0 + np.log(count))
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        np.divide(matrix, norms, out=matrix, where=norms > 0)
        return matrix

    def _bucket(self, feature: str) -> tuple[int, float]:
        digest = hashlib.blake2b(feature.encode(), digest_size=8, salt=self._salt).digest()
        value = int.from_bytes(digest, "little")
        return value % self._dimension, 1.0 if (value >> 63) & 1 else -1.0


def _features(text: str) -> Counter[str]:
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
    stems = [_stem(w) for w in words]
    features = Counter(stems)
    features.update(f"{a} {b}" for a, b in itertools.pairwise(stems))
    return features


def _stem(word: str) -> str:
    """A light suffix strip so that the forms of a word share one feature.

    'charge', 'charges', 'charged' and 'charging' all become 'charg': after the suffix, a
    trailing 'e' goes too, otherwise the bare word keeps an 'e' its inflections lost.
    Words ending in 'ss' are not plurals ('address' and 'addresses' give 'address'), and
    'ies' becomes 'y' ('deliveries' and 'delivery'). At least three letters always remain.
    """
    if word.endswith("ies") and len(word) >= 5:
        return word[:-3] + "y"
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if not (suffix == "s" and word.endswith("ss")):
                word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) >= 4:
        word = word[:-1]
    return word


def cosine(a: Vectors, b: Vectors) -> npt.NDArray[np.float32]:
    """Cosine similarity of every row of ``a`` with every row of ``b`` (rows unit length)."""
    return a @ b.T
