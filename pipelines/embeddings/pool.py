"""Several embedding servers of one model, used round robin: scale-out without a router in front.

``make_embeddings`` builds a pool when ``--embeddings-url`` is given more than once. Each request goes to the next
server whole, so the servers never see a split batch; the pool is a :class:`~pipelines.embeddings.Provider` like any
one of them.

>>> from pipelines.embeddings.server import ServerEmbeddings
>>> pool = PooledEmbeddings([ServerEmbeddings.connect(f"http://{h}:30000") for h in ("gpu1", "gpu2")])  # doctest: +SKIP
>>> pool.embed_documents(["goes to gpu1"]), pool.embed_documents(["goes to gpu2"])  # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence

from langchain_core.embeddings import Embeddings

from pipelines.embeddings.profiles import Profile
from pipelines.embeddings.provider import Provider
from pipelines.errors import EmbeddingServerError


class PooledEmbeddings(Embeddings):
    """Spreads requests over several servers of the same model, round robin (thread-safe)."""

    def __init__(self, members: Sequence[Provider]) -> None:
        models = {m.model_id for m in members}
        if len(models) != 1:
            raise EmbeddingServerError(f"the embedding servers serve different models: {sorted(models)}")
        self.members = list(members)
        self._next = itertools.cycle(self.members)
        self._lock = threading.Lock()

    @property
    def profile(self) -> Profile:
        return self.members[0].profile

    @property
    def model_id(self) -> str:
        return self.members[0].model_id

    @property
    def is_server(self) -> bool:
        return True

    def with_task(self, task: str) -> PooledEmbeddings:
        """A pool of the same servers, each asking queries with this instruction task."""
        return PooledEmbeddings([m.with_task(task) for m in self.members])

    def detached(self) -> PooledEmbeddings:
        """The same pool with HTTP connections of its own, for a forked process."""
        return PooledEmbeddings([m.detached() for m in self.members])

    def _pick(self) -> Provider:
        with self._lock:
            return next(self._next)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._pick().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._pick().embed_query(text)
