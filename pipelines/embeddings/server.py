"""One OpenAI-compatible ``/v1`` embedding server: SGLang serving Qwen3-Embedding (vLLM and others work too).

:class:`ServerEmbeddings` is LangChain's ``OpenAIEmbeddings`` set up the way SGLang needs it
(docs/sglang.md §0, §5), built from what :mod:`pipelines.embeddings.probe` learnt of the server. The only module of
qwen-rag that imports ``openai`` and ``langchain_openai`` (about two seconds of start-up), so the embedded default
never pays for them, nor does a process that embeds nothing (:mod:`pipelines.embeddings.deferred`).

>>> emb = ServerEmbeddings.connect("http://127.0.0.1:30000/v1")      # doctest: +SKIP
>>> emb.is_server, emb.with_task("Retrieve Python code").task         # doctest: +SKIP
(True, 'Retrieve Python code')
"""

from __future__ import annotations

import math
from typing import Any

import openai
from langchain_core.runnables.config import run_in_executor
from langchain_openai import OpenAIEmbeddings
from pydantic import ConfigDict, PrivateAttr

from pipelines.embeddings.probe import ServerSpec, server_spec
from pipelines.embeddings.profiles import DEFAULT_TASK, Profile
from pipelines.errors import EmbeddingServerError
from pipelines.settings import Settings


def _server_message(error: openai.APIError) -> str:
    """SGLang's flat error body and OpenAI's nested one both carry ``message`` (docs/sglang.md §1.4)."""
    body = error.body if isinstance(error.body, dict) else {}
    inner = body.get("error", body)
    message = inner.get("message") if isinstance(inner, dict) else None
    return str(message or error.message)


def _is_blank(text: str) -> bool:
    return not text.strip()


def _truncate(vector: list[float], width: int) -> list[float]:
    """Client-side Matryoshka: truncate, then L2-normalise, as SGLang does server-side (§1.7)."""
    head = vector[:width]
    norm = math.sqrt(sum(x * x for x in head)) or 1.0
    return [x / norm for x in head]


class ServerEmbeddings(OpenAIEmbeddings):
    """``OpenAIEmbeddings`` configured for SGLang and similar servers; a :class:`~pipelines.embeddings.Provider`.

    - ``check_embedding_ctx_length`` is off: LangChain would otherwise send tiktoken ids that SGLang embeds as garbage.
    - Queries carry the model's instruction (Qwen3: ``Instruct: {task}\\nQuery:{query}``), documents none.
    - Blank texts are never sent (SGLang fails the whole batch for one); they get a zero vector.
    - ``truncate_to`` applies Matryoshka on the client where the server has no ``dimensions`` support.

    >>> emb = ServerEmbeddings.connect("http://127.0.0.1:30000/v1")      # doctest: +SKIP
    >>> emb.embed_query("什么是人工智能？")[:3]                           # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    profile: Profile
    task: str = DEFAULT_TASK
    truncate_to: int | None = None
    _width: int | None = PrivateAttr(default=None)

    @classmethod
    def connect(cls, url: str, settings: Settings | None = None) -> ServerEmbeddings:
        """Ask the server which model it serves and build the client with that model's profile."""
        return cls.from_spec(server_spec(url, settings or Settings()))

    @classmethod
    def from_spec(cls, spec: ServerSpec) -> ServerEmbeddings:
        """The client for a probed server."""
        settings = spec.settings
        return cls(
            model=spec.model,
            openai_api_base=spec.base,
            openai_api_key=settings.api_key,
            check_embedding_ctx_length=False,
            chunk_size=settings.batch_size,
            request_timeout=settings.timeout,
            max_retries=settings.max_retries,
            dimensions=spec.dimensions,
            profile=spec.profile,
            task=spec.task,
            truncate_to=spec.truncate_to,
        )

    @property
    def model_id(self) -> str:
        return self.model

    @property
    def is_server(self) -> bool:
        return True

    def with_task(self, task: str) -> ServerEmbeddings:
        """A copy asking queries with this instruction task; it shares this client's connections."""
        return self.model_copy(update={"task": task})

    def detached(self) -> ServerEmbeddings:
        """The same client with HTTP connections of its own, for a forked process (shared sockets mix answers)."""
        copied = {"client", "async_client", "http_client", "http_async_client"}
        detached = type(self)(**{name: getattr(self, name) for name in type(self).model_fields if name not in copied})
        detached._width = self._width
        return detached

    def _post(self, texts: list[str], *, query: bool) -> list[list[float]]:
        extra = self.profile.extra_body(query=query)
        kwargs: dict[str, Any] = {"extra_body": extra} if extra else {}
        try:
            vectors = super().embed_documents(texts, **kwargs)
        except openai.APIStatusError as error:
            raise EmbeddingServerError(_server_message(error), status=error.status_code) from error
        except openai.APIConnectionError as error:
            raise EmbeddingServerError(
                f"cannot reach the embedding server at {self.openai_api_base}: {error}"
            ) from error
        if self.truncate_to:
            vectors = [_truncate(v, self.truncate_to) for v in vectors]
        if vectors:
            self._width = len(vectors[0])
        return vectors

    def _zero(self) -> list[float]:
        if self._width is None:
            self._post(["."], query=False)  # learn the width once; blanks are rare
        return [0.0] * (self._width or 0)

    def embed_documents(self, texts: list[str], chunk_size: int | None = None, **kwargs: Any) -> list[list[float]]:
        """Embed documents as they are (no instruction); blanks are not sent and get zero vectors."""
        sendable = [i for i, t in enumerate(texts) if not _is_blank(t)]
        sent = self._post([self.profile.format_document(texts[i]) for i in sendable], query=False) if sendable else []
        out: list[list[float]] = [[] for _ in texts]
        for i, vector in zip(sendable, sent, strict=True):
            out[i] = vector
        if len(sendable) < len(texts):
            zero = self._zero()
            out = [v or list(zero) for v in out]
        return out

    def embed_query(self, text: str, **kwargs: Any) -> list[float]:
        """Embed a query with the model's instruction."""
        if _is_blank(text):
            return self._zero()
        return self._post([self.profile.format_query(text, self.task)], query=True)[0]

    async def aembed_documents(
        self, texts: list[str], chunk_size: int | None = None, **kwargs: Any
    ) -> list[list[float]]:
        # The sync path runs in a worker thread: one code path for validation, retries and errors.
        return await run_in_executor(None, self.embed_documents, texts)

    async def aembed_query(self, text: str, **kwargs: Any) -> list[float]:
        return await run_in_executor(None, self.embed_query, text)
