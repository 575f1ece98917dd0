"""A stand-in for a ``/rerank`` server (the Jina-style schema of vLLM, also used by Cohere v1, Jina and Infinity).

It follows vLLM's rerank API (``vllm/entrypoints/openai``: ``RerankRequest``/``RerankResponse`` and the
``/rerank``, ``/v1/rerank``, ``/v2/rerank`` routes), plus ``return_documents`` from Jina and Cohere v1:

- request ``{"model"?, "query", "documents": [str], "top_n"?, "return_documents"?}``; ``top_n`` absent, 0 or
  negative means every document (vLLM); ``return_documents`` defaults to True (vLLM always returns them, Jina's
  default);
- response ``{"id", "model", "usage": {"total_tokens"}, "results": [{"index", "document"?: {"text"},
  "relevance_score"}]}``, results sorted by score, best first;
- errors nested OpenAI-style, ``{"error": {"message", "type", "param", "code"}}``; a ``model`` other than the
  served one is a 404, as vLLM's model check;
- with an API key only ``/v1/...`` paths need it: vLLM's auth middleware guards nothing else.

Stricter than vLLM on purpose: an empty or blank query or document is a 400 (vLLM would score it), so a client
that sends one fails here.

>>> with RerankServer() as srv:                                        # doctest: +SKIP
...     httpx.post(srv.url + "/rerank", json={"query": "q", "documents": ["a", "q"]}).json()["results"][0]["index"]
1
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from testbed.embedders import Embedder, HashEmbedder, Scorer, cosine_scorer
from testbed.sglang import (
    Endpoint,
    Handler,
    Incoming,
    Reply,
    RequestValidationFailure,
    StandInServer,
    parse_body,
    qwen_tokenizer,
)


class RerankRequest(BaseModel):
    # vLLM's OpenAIBaseModel keeps unknown fields (and logs them) rather than refusing them.
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    query: str
    documents: list[str]
    top_n: int = 0
    return_documents: bool = True
    truncate_prompt_tokens: int | None = Field(default=None, ge=-1)


class _Failure(Exception):
    def __init__(self, status: int, message: str, err_type: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.err_type, self.param = status, message, err_type, param


def _error_reply(status: int, message: str, err_type: str, param: str | None = None) -> Reply:
    return Reply.json(status, {"error": {"message": message, "type": err_type, "param": param, "code": status}})


def _content_type_errors(request: Incoming) -> list[Any] | None:
    """vLLM's validate_json_request dependency: its error list is a bare string."""
    media_type = request.headers.get("content-type", "").lower().split(";", maxsplit=1)[0]
    if media_type == "application/json":
        return None
    return ["Unsupported Media Type: Only 'application/json' is allowed"]


class RerankServer(StandInServer):
    """``vllm serve <reranker>`` for ``/rerank``, answered by a :class:`~testbed.embedders.Scorer`.

    The default score is the cosine of the embedder's query and document vectors.

    >>> with RerankServer(scorer=lambda q, docs, instruct: [len(d) for d in docs]) as srv:    # doctest: +SKIP
    ...     srv.fail_next(1, "503")
    ...     srv.requests[-1].json["query"]
    """

    work_paths = frozenset({"/rerank", "/v1/rerank", "/v2/rerank"})

    def __init__(
        self,
        scorer: Scorer | None = None,
        embedder: Embedder | None = None,
        served_model_name: str = "Qwen/Qwen3-Reranker-0.6B",
        api_key: str | None = None,
        latency_s: float = 0.0,
        *,
        hang_s: float = 30.0,
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, latency_s=latency_s, hang_s=hang_s, port=port)
        self.served_model_name = served_model_name
        self._scorer = scorer if scorer is not None else cosine_scorer(embedder or HashEmbedder(dim=384))
        self._routes: dict[str, dict[str, Handler]] = {
            **{path: {"POST": self._rerank} for path in self.work_paths},
            "/health": {"GET": lambda request: Reply(200)},
        }

    def _handlers(self, path: str) -> dict[str, Handler] | None:
        return self._routes.get(path)

    def _requires_key(self, path: str) -> bool:
        return path.startswith("/v1")

    def _fault_reply(self, status: int) -> Reply:
        messages = {503: "Service Unavailable", 500: "Internal Server Error", 429: "Too Many Requests"}
        err_type = {503: "ServiceUnavailableError", 500: "InternalServerError", 429: "RateLimitError"}
        return _error_reply(status, messages[status], err_type[status])

    def _rerank(self, request: Incoming) -> Reply:
        try:
            endpoint = Endpoint(request.method, request.path)
            return Reply.json(200, self._rank(parse_body(request, RerankRequest, endpoint, _content_type_errors)))
        except RequestValidationFailure as e:
            return _error_reply(400, e.message, "BadRequestError")
        except _Failure as e:
            return _error_reply(e.status, e.message, e.err_type, e.param)

    def _rank(self, req: RerankRequest) -> dict[str, Any]:
        if req.model is not None and req.model != self.served_model_name:
            raise _Failure(404, f"The model `{req.model}` does not exist.", "NotFoundError", "model")
        if not req.query.strip():
            raise _Failure(400, "query must not be empty", "BadRequestError", "query")
        if not req.documents:
            raise _Failure(400, "documents must not be empty", "BadRequestError", "documents")
        if blank := [i for i, d in enumerate(req.documents) if not d.strip()]:
            raise _Failure(400, f"document at index {blank[0]} is empty", "BadRequestError", "documents")
        self._simulate_work()
        scores = [float(s) for s in self._scorer(req.query, req.documents, None)]
        # One (query, document) pair per document, as a cross-encoder sees them.
        pairs = [req.query + d for d in req.documents]
        total_tokens = sum(len(e.ids) for e in qwen_tokenizer().encode_batch(pairs, add_special_tokens=False))
        results = [
            {
                "index": i,
                **({"document": {"text": d}} if req.return_documents else {}),
                "relevance_score": s,
            }
            for i, (s, d) in enumerate(zip(scores, req.documents, strict=True))
        ]
        results.sort(key=lambda r: r["relevance_score"], reverse=True)
        top_n = req.top_n if req.top_n > 0 else len(results)
        return {
            "id": f"rerank-{uuid.uuid4().hex}",
            "model": self.served_model_name,
            "usage": {"total_tokens": total_tokens},
            "results": results[:top_n],
        }
