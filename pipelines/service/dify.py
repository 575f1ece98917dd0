"""Dify's External Knowledge API: ``POST /retrieval`` (and ``/v1/retrieval``), so that a Dify knowledge base (and the
apps that copy its contract) can search a qwen-rag collection.

Held to Dify's own client, ``ExternalDatasetService.fetch_external_knowledge_retrieval`` in langgenius/dify
``api/services/external_knowledge_service.py``: it posts ``{"retrieval_setting": {"top_k", "score_threshold"},
"query", "knowledge_id"}`` and, when set, ``"metadata_condition"`` (``{"logical_operator", "conditions": [{"name",
"comparison_operator", "value"}]}``, both possibly null) as JSON with ``Authorization: Bearer KEY``, and reads
``records`` from a 200 (anything else is an error to it). When the API is registered it posts with the key and no
body: a 403 there is "authorization failed", a 404 "not found"; a 422 for the missing body is neither.

- ``knowledge_id`` is a collection name; one the key may not read is a 403 (``error_code`` 1002) whether or not it
  exists, one it may read that does not exist a 404 (2001, "unknown knowledge").
- ``top_k`` and ``score_threshold`` are honoured in the service's mode (``serve --mode``): the records are the
  top_k best whose score is at least the threshold. Every mode scores in 0–1 as Dify reads them (dense: cosine
  similarity, below 0 only for a passage no threshold keeps; hybrid: the fused score; bm25: over the best hit's);
  a score above 1 would be an error (409), never clamped.
- A record's ``title`` is its file's ``title`` (a document property), else its file name; ``metadata`` is an object
  with the passage's citation (source, page, section, sheet and rows, offset) and the user's own fields.
- ``metadata_condition`` becomes a Chroma ``where`` (:mod:`pipelines.service.conditions`); one it cannot take is a
  400 saying why.
- With ``serve --window N`` a record's content is the hit with its N neighbouring chunks on each side, and its
  metadata's ``spans`` say where the hits lie in it.

Errors are Dify's ``{"error_code", "error_msg"}``: 1001 and 1002 (auth, :mod:`pipelines.service.auth`), 2001, and
otherwise the HTTP status as the code (400 a condition it cannot take, 409 no usable collection, 503 a server down).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any, Literal

from chromadb.api.models.Collection import Collection
from chromadb.errors import ChromaError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from langchain_core.documents import Document
from pydantic import BaseModel, ConfigDict, Field

from loaders.errors import one_line
from pipelines.errors import QwenRagError
from pipelines.retrieve.warm import WarmRetrievers
from pipelines.service.auth import DIFY_PATHS, access_of
from pipelines.service.conditions import Condition, Operator, where_of
from pipelines.service.schemas import MAX_QUERY_CHARS, Count, ErrorBody, QueryText, Text
from pipelines.store.paging import pages
from pipelines.store.records import CHUNK_HASH, CHUNKER, FILE_HASH, POSITION, ROOT, SOURCE, TOTAL

UNKNOWN_KNOWLEDGE = 2001
FORBIDDEN = 1002
#: Bookkeeping on every chunk (:mod:`pipelines.store.records`) and the retriever's score parts: not the user's.
_INTERNAL = frozenset({ROOT, FILE_HASH, CHUNKER, POSITION, TOTAL, CHUNK_HASH, "score", "dense_score", "bm25_score"})
# Dify's clients and the apps that copy it may send fields this API does not know (a newer Dify): they are ignored,
# where the rest of the service refuses them, so that an upgrade on their side does not break the knowledge base.
_LENIENT = ConfigDict(extra="ignore")

ScalarValue = Text | int | float | bool


class RetrievalSetting(BaseModel):
    model_config = _LENIENT

    top_k: Count | None = Field(None, description="At most this many records; default: the service's `--k`.")
    score_threshold: float | None = Field(
        0.0, ge=0, le=1, description="Only records scoring at least this (0–1); 0 or null: every one."
    )


class DifyCondition(BaseModel):
    model_config = _LENIENT

    name: Text | list[Text] = Field(description="The metadata field (or, as older Dify sent, a list: any of them).")
    comparison_operator: Operator
    value: ScalarValue | list[ScalarValue] | None = Field(
        None, description="What to compare with; a list (or comma-separated text) for `in`; none for `empty`."
    )


class MetadataCondition(BaseModel):
    model_config = _LENIENT

    logical_operator: Literal["and", "or"] | None = "and"
    conditions: list[DifyCondition] | None = Field(None, max_length=50)


class RetrievalRequest(BaseModel):
    """A search as Dify sends it."""

    model_config = _LENIENT | ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "knowledge_id": "default",
                    "query": "什么是人工智能？",
                    "retrieval_setting": {"top_k": 3, "score_threshold": 0.5},
                }
            ]
        }
    )

    knowledge_id: Text = Field(min_length=1, max_length=512, description="The collection to search.")
    query: QueryText = Field(min_length=1, max_length=MAX_QUERY_CHARS, json_schema_extra={"pattern": r"\S"})
    retrieval_setting: RetrievalSetting
    metadata_condition: MetadataCondition | None = None


class Record(BaseModel):
    content: str = Field(description="The passage (with `serve --window N`, with its neighbouring chunks).")
    score: float = Field(ge=0, le=1, description="Relevance to the query, 0–1, higher is better.")
    title: str = Field(description="The file's title, else its file name.")
    metadata: dict[str, Any] = Field(description="Source, page, section, sheet and rows, offset, the user's fields.")


class RetrievalResponse(BaseModel):
    records: list[Record]


class DifyError(BaseModel):
    error_code: int = Field(
        description="1001 bad Authorization header, 1002 authorization failed, 2001 unknown "
        "knowledge; otherwise the HTTP status."
    )
    error_msg: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": DifyError | ErrorBody, "description": "A metadata_condition that cannot apply; a body not UTF-8."},
    403: {"model": DifyError, "description": "No key, a wrong key (1001, 1002), or a knowledge the key may not read."},
    404: {"model": DifyError, "description": "No such knowledge (2001)."},
    409: {"model": DifyError, "description": "The collection was built with another model, or scores outside 0–1."},
    503: {"model": DifyError, "description": "The embedding server or the Chroma store failed."},
}


class DifyFailure(Exception):
    """An answer in Dify's error shape."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        return JSONResponse({"error_code": self.code, "error_msg": self.message}, status_code=self.status)


def add_dify(app: FastAPI, warm: WarmRetrievers) -> None:
    """Serve the External Knowledge API over ``warm``'s store at each of :data:`~pipelines.service.auth.DIFY_PATHS`."""

    def retrieval(body: RetrievalRequest, request: Request) -> RetrievalResponse | JSONResponse:
        """Dify's External Knowledge API: the records of a collection (`knowledge_id`) that best answer the query."""
        try:
            return _retrieve(warm, body, request)
        except DifyFailure as failure:
            return failure.response()
        except QwenRagError as error:
            return DifyFailure(error.http_status, error.http_status, str(error)).response()
        except ChromaError as error:
            warm.forget(body.knowledge_id)
            return DifyFailure(503, 503, f"store: {one_line(str(error))}").response()

    for path in sorted(DIFY_PATHS):
        app.add_api_route(
            path, retrieval, methods=["POST"], response_model=RetrievalResponse, responses=_ERRORS, tags=["Dify"]
        )


def _retrieve(warm: WarmRetrievers, body: RetrievalRequest, request: Request) -> RetrievalResponse:
    name = body.knowledge_id
    if not access_of(request.scope).may_read(name):
        raise DifyFailure(403, FORBIDDEN, "Authorization failed: this key may not read this knowledge")
    collection = warm.store().existing(name)
    if collection is None:
        raise DifyFailure(404, UNKNOWN_KNOWLEDGE, f"unknown knowledge '{name}': no such collection")
    setting = body.retrieval_setting
    options: dict[str, Any] = {"k": setting.top_k}
    condition = body.metadata_condition
    if condition is not None and condition.conditions:
        conditions = [Condition(c.name, c.comparison_operator, c.value) for c in condition.conditions]
        options["where"] = where_of(condition.logical_operator, conditions, distinct_values(collection))
    retriever = warm.get(name)
    docs = retriever.invoke(body.query, **options)
    threshold = setting.score_threshold or 0.0
    records = []
    for doc in docs:
        score = doc.metadata.get("score")
        if not isinstance(score, int | float):
            raise DifyFailure(409, 409, f"a passage of {doc.metadata.get(SOURCE)} has no score")
        if score < threshold:  # a negative cosine too: below any threshold Dify can send
            continue
        if score > 1:
            mode = retriever.options({}).mode.value
            raise DifyFailure(409, 409, f"a {mode} score of {score} is above 1: Dify reads scores in 0-1")
        records.append(_record(doc, float(score)))
    return RetrievalResponse(records=records)


def _record(doc: Document, score: float) -> Record:
    meta = doc.metadata
    source = str(meta.get(SOURCE) or "")
    title = meta.get("title")
    return Record(
        content=doc.page_content,
        score=score,
        title=str(title) if title else PurePosixPath(source).name,
        metadata={key: value for key, value in meta.items() if key not in _INTERNAL and value is not None},
    )


def distinct_values(collection: Collection) -> Callable[[str], list[Any]]:
    """``distinct(field)``: the values ``field`` holds in ``collection``, read in one scan for all fields asked."""
    seen: dict[str, set[Any]] | None = None

    def distinct(field: str) -> list[Any]:
        nonlocal seen
        if seen is None:
            seen = {}
            for page in pages(collection, include=["metadatas"]):
                for meta in page["metadatas"] or []:
                    for key, value in (meta or {}).items():
                        if isinstance(value, str | int | float):
                            seen.setdefault(key, set()).add(value)
        return sorted(seen.get(field, set()), key=repr)

    return distinct
