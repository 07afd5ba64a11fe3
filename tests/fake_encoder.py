"""The one fake encoder of the project: hashing bag-of-words vectors, for tests and bench scripts.

Texts that share words are close; nothing is known of meaning. Tests use it for logic (anything
about answer quality uses the real packaged model), and bench scripts use it to measure the
machinery around the model (reading, chunking, writing, swapping generations) without paying
for embedding. Shared so that a test and a benchmark never disagree on what "fake" means.

    from tests.fake_encoder import HashingEncoder, hashing_encoder
    register_encoder("fake", HashingEncoder)                   # 64-d, a 48-token window
    register_encoder("bench", hashing_encoder(384, 256))       # a MiniLM-sized fake

`HashingEncoder.seconds` adds up the time spent in `encode`, over every instance, so that a
benchmark can report its figures "beyond embedding".
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from functools import lru_cache

import numpy as np

_WORD = re.compile(r"\w+")


@lru_cache(maxsize=1 << 16)
def _bucket(word: str) -> int:
    # md5, not hash(): the same word lands in the same bucket in every process.
    return int.from_bytes(hashlib.md5(word.encode()).digest()[:4], "little")


class HashingEncoder:
    """Deterministic bag-of-words vectors with the encoder interface of search.encoders."""

    dim = 64
    max_tokens = 48
    query_prompt = ""
    document_prompt = ""
    seconds = 0.0  # time spent in encode(), all instances together

    def encode(
        self,
        texts: list[str],
        *,
        query: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        start = time.perf_counter()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for w in _WORD.findall(text.lower()):
                out[i, _bucket(w) % self.dim] += 1.0
            norm = np.linalg.norm(out[i])
            if norm:
                out[i] /= norm
            else:
                out[i, 0] = 1.0  # a text without words still gets a unit vector
        HashingEncoder.seconds += time.perf_counter() - start
        return out

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(text)]


def hashing_encoder(dim: int, max_tokens: int) -> type[HashingEncoder]:
    """A HashingEncoder class of another size (a factory for `register_encoder`)."""
    attrs = {"dim": dim, "max_tokens": max_tokens}
    return type(f"HashingEncoder{dim}x{max_tokens}", (HashingEncoder,), attrs)
