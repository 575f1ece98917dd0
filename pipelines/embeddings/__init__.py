"""Embedding providers: the embedded default (multilingual-e5-small), one SGLang/OpenAI-compatible server, or a
pool of servers, all behind the :class:`Provider` protocol.

Modules, one job each: ``provider`` (the protocol), ``profiles`` (how each model wants its inputs), ``probe`` (what
a server serves), ``server`` (SGLang through LangChain's ``OpenAIEmbeddings``), ``deferred`` (that client, built on
first use), ``ahead`` (a query embedded in a forked child), ``pool`` (round robin over servers), ``local`` (the
embedded default), ``e5/`` (the embedded model itself), ``counters`` (each model's token counter).

Importing this package is cheap: :func:`make_embeddings` imports the server module (openai, langchain_openai; on the
first embedding if ``deferred``) or the local one (and, on its first embedding, onnxruntime) only when it builds that
provider, so the embedded path never loads the OpenAI client and the server path never loads onnxruntime.

>>> from pipelines.settings import Settings
>>> provider = make_embeddings(Settings())                      # no URL: the embedded default
>>> isinstance(provider, Provider), provider.is_server
(True, False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.embeddings.provider import Provider
from pipelines.errors import EmbeddingServerError

if TYPE_CHECKING:
    from pipelines.embeddings.ahead import Helper
    from pipelines.settings import Settings

__all__ = ["EmbeddingServerError", "Provider", "make_embeddings", "query_helper"]


def query_helper() -> Helper | None:
    """A forked child that imports the OpenAI client now, to embed one query later while this process opens Chroma
    (:mod:`pipelines.embeddings.ahead`); None where processes are not forked."""
    from pipelines.embeddings.ahead import Helper

    return Helper.start()


def make_embeddings(settings: Settings, *, deferred: bool = False) -> Provider:
    """The configured provider: the server(s) at ``embeddings_url`` (probed now), else the embedded default.

    ``deferred``: each server's LangChain client is built on its first embedding (:mod:`pipelines.embeddings.deferred`),
    for a process that may embed nothing, or only in a forked child."""
    urls = settings.embeddings_url
    if not urls:
        if settings.dimensions is not None:
            raise EmbeddingServerError("--dimensions needs a Qwen3-Embedding server; the embedded model is 384 wide")
        from pipelines.embeddings.local import LocalEmbeddings

        return LocalEmbeddings()
    members: list[Provider]
    if deferred:
        from pipelines.embeddings.deferred import DeferredServer
        from pipelines.embeddings.probe import server_spec

        members = [DeferredServer(server_spec(url, settings)) for url in urls]
    else:
        from pipelines.embeddings.server import ServerEmbeddings

        members = [ServerEmbeddings.connect(url, settings) for url in urls]
    if len(members) == 1:
        return members[0]
    from pipelines.embeddings.pool import PooledEmbeddings

    return PooledEmbeddings(members)
