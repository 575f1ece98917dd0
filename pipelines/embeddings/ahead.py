"""One query's vector, computed in a forked child while this process does something else.

Why a process: a one-shot ``qwen-rag query`` spends its start on two things, each a second or two on the dev box
(docs/benchmarks.md, "A collection that grows"): importing the OpenAI client to embed the query (``langchain_openai``
loads its chat models too), and importing Chroma and having it load the collection's vector index. Chroma's load
holds the GIL for its whole call (measured: a Python thread ran at 1% of its speed meanwhile), so only another
process can do the first while this one does the second.

:class:`Helper` is that process, forked (Linux) as early as the CLI knows a vector will be needed, before Chroma is
even imported: it imports the OpenAI client at once, then waits for the one query to embed, which the CLI sends once
the collection has said which instruction its queries carry (:meth:`Helper.ask`). The answer comes back through a
pipe (:class:`QueryAhead`). Any failure there (the child killed, the server refusing) is left to this process: it
embeds the query itself, and raises what the provider raises.

>>> helper = Helper.start()                              # before importing Chroma            # doctest: +SKIP
>>> provider = helper.ask(make_embeddings(settings, deferred=True), "什么是人工智能？")        # doctest: +SKIP
>>> provider.embed_query("什么是人工智能？")              # the child's vector                  # doctest: +SKIP
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from multiprocessing.connection import Connection
from typing import Any

from pipelines.embeddings.probe import ServerSpec
from pipelines.embeddings.profiles import Profile
from pipelines.embeddings.provider import Provider


class Helper:
    """A forked child that imports the OpenAI client now and embeds one query when asked (see the module doc)."""

    def __init__(self, connection: Connection, child: Any) -> None:
        self._connection: Connection | None = connection
        self._child = child

    @classmethod
    def start(cls) -> Helper | None:
        """The helper, started; None where processes are not forked (not Linux)."""
        if sys.platform != "linux":
            return None
        context = multiprocessing.get_context("fork")
        mine, theirs = context.Pipe(duplex=True)
        child = context.Process(target=_serve, args=(theirs,), daemon=True)
        gc.freeze()  # whatever the child inherits must not be collected there
        try:
            child.start()
        finally:
            gc.unfreeze()
        theirs.close()
        return cls(mine, child)

    def ask(self, provider: Provider, text: str, task: str | None) -> Provider:
        """``provider`` (given the instruction ``task``, if any), with the vector of ``text`` on its way from the
        helper; ``provider`` itself when the helper cannot embed for it (a pool, the embedded model, a client
        already built), and the helper is let go."""
        connection, self._connection = self._connection, None
        spec = getattr(provider, "spec", None)
        if connection is None or not isinstance(spec, ServerSpec) or getattr(provider, "built", True):
            if connection is not None:
                connection.close()
            return provider
        try:
            connection.send((spec, text))
        except OSError:  # the helper is gone (killed): this process embeds the query itself
            connection.close()
            return provider
        return QueryAhead(provider, text, task, connection, self._child)

    def close(self) -> None:
        """Let the helper go unasked (it exits when the pipe closes)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class QueryAhead:
    """``inner``, with the vector of ``text`` already on its way from the helper. ``task``: the instruction task
    ``inner`` was given, if any (asked for again, it keeps the vector on its way). Used by one search of a one-shot
    process, so not a LangChain ``Embeddings``: importing that base class alone costs 0.14 s."""

    def __init__(self, inner: Provider, text: str, task: str | None, answer: Connection, child: Any) -> None:
        self.inner = inner
        self.text = text
        self.task = task
        self._answer: Connection | None = answer
        self._child = child

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
        """The helper's vector, once; None if it has none (this process then embeds the query itself)."""
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


def _serve(connection: Connection) -> None:
    """The helper: import the client, wait for (spec, text), answer ("vector", floats) or ("failed", why)."""
    result: tuple[str, Any] | None = None
    try:
        from pipelines.embeddings.server import ServerEmbeddings  # the import this process is for

        spec, text = connection.recv()
        result = ("vector", ServerEmbeddings.from_spec(spec).embed_query(text))
    except EOFError:
        pass  # let go unasked
    except BaseException as error:  # the parent's own attempt reports it, with its real type
        result = ("failed", repr(error))
    try:
        if result is not None:
            connection.send(result)
        connection.close()
    finally:
        os._exit(0)  # not the parent's finalisers
