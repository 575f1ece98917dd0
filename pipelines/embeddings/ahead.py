"""One query's vector, computed ahead in a forked child while this process does something else.

Why a process: a one-shot ``qwen-rag query`` spends its start on two things, each about a second or two on the dev
box (docs/benchmarks.md, "A collection that grows"): importing the OpenAI client to embed the query
(``langchain_openai``, :mod:`pipelines.embeddings.deferred`), and Chroma loading the collection's vector index. Chroma's
load holds the GIL for its whole call (measured: a Python thread ran 1% of its speed meanwhile), so only another
process can do the first while this one does the second. The child is forked (Linux): it inherits the probed
provider, builds its own client and connections, sends the vector back through a pipe and exits without running
the parent's finalisers. Any failure there (the child killed, the server refusing) is left to this process: it
embeds the query itself, and raises what the provider raises.

>>> provider = ahead(make_embeddings(settings, deferred=True), "什么是人工智能？")   # doctest: +SKIP
>>> store.collection(...).count()              # Chroma loads its index meanwhile  # doctest: +SKIP
>>> provider.embed_query("什么是人工智能？")   # the child's vector                 # doctest: +SKIP
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from multiprocessing.connection import Connection
from typing import Any

from langchain_core.embeddings import Embeddings

from pipelines.embeddings.profiles import Profile
from pipelines.embeddings.provider import Provider


class QueryAhead(Embeddings):
    """``inner``, with the vector of ``text`` already on its way from a forked child (see the module docstring).
    ``task``: the instruction task ``inner`` was given, if any (asked for again, it keeps the vector on its way)."""

    def __init__(self, inner: Provider, text: str, task: str | None = None) -> None:
        self.inner = inner
        self.text = text
        self.task = task
        context = multiprocessing.get_context("fork")
        self._answer: Connection | None
        self._answer, sending = context.Pipe(duplex=False)
        self._child = context.Process(target=_embed, args=(inner, text, sending), daemon=True)
        gc.freeze()  # objects the child inherits (Chroma's among them) must not be collected there
        try:
            self._child.start()
        finally:
            gc.unfreeze()
        sending.close()

    @property
    def profile(self) -> Profile:
        return self.inner.profile

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def is_server(self) -> bool:
        return self.inner.is_server

    def with_task(self, task: str) -> Provider:
        return self if task == self.task else self.inner.with_task(task)

    def detached(self) -> Provider:
        return self.inner.detached()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        if text == self.text and self._answer is not None:
            vector = self._receive()
            if vector is not None:
                return vector
        return self.inner.embed_query(text)

    def _receive(self) -> list[float] | None:
        """The child's vector, once; None if it has none (this process then embeds the query itself)."""
        answer, self._answer = self._answer, None
        assert answer is not None
        try:
            kind, value = answer.recv()
        except (EOFError, OSError):
            kind, value = "failed", None
        finally:
            answer.close()
            self._child.join(timeout=5)
        return value if kind == "vector" else None


def ahead(provider: Provider, text: str, task: str | None = None) -> Provider:
    """``provider`` (given the instruction ``task``, if any), with the vector of the query ``text`` computed ahead
    where that pays: a server's client, on Linux (fork). Elsewhere ``provider`` itself."""
    if not provider.is_server or sys.platform != "linux":
        return provider
    return QueryAhead(provider, text, task)


def _embed(provider: Provider, text: str, answer: Connection) -> None:
    result: tuple[str, Any]
    try:
        result = ("vector", provider.detached().embed_query(text))
    except BaseException as error:  # reported by the parent's own attempt, with its real type
        result = ("failed", repr(error))
    try:
        answer.send(result)
        answer.close()
    finally:
        os._exit(0)  # not the parent's finalisers: a Chroma object's waits on threads a fork does not copy
