"""One settings object for the library and the CLI.

Every CLI flag is a field here; every field can also be set by the environment variable
``QWEN_RAG_<FIELD>`` (upper case), e.g. ``QWEN_RAG_EMBEDDINGS_URL=http://127.0.0.1:30000/v1``.

>>> from pipelines.settings import Settings
>>> s = Settings(store="/tmp/qwen-rag-doc", chunk_tokens=256)
>>> s.chunk_tokens, s.collection
(256, 'default')
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from loaders.options import LayoutMode, OcrMode
from pipelines.fields import FieldValue, check, pairs, values


class OnMismatch(StrEnum):
    """What to do when a collection was built with another embedding model or dimension."""

    FAIL = "fail"
    RECREATE = "recreate"


class Mode(StrEnum):
    """How the retriever finds candidates."""

    DENSE = "dense"  # vectors only
    BM25 = "bm25"  # words only (jieba for Chinese, stemmed English)
    HYBRID = "hybrid"  # both, fused (see Fusion)


class Fusion(StrEnum):
    """How hybrid mode merges the dense and the BM25 candidates (:mod:`pipelines.retrieve.fusion`)."""

    CONVEX = "convex"  # normalised scores, the BM25 side weighed by how much of the query a passage covers
    RRF = "rrf"  # reciprocal rank fusion: ranks only


class Workers(StrEnum):
    """Where an ingest reads, chunks and sends embedding requests (see :mod:`pipelines.ingestion.running`)."""

    AUTO = "auto"  # a process for an embedding server on Linux, threads otherwise
    THREADS = "threads"  # threads of the ingest process
    PROCESS = "process"  # a forked child process, so Chroma's writes (which hold the GIL) never stall requests


# Tuned on SciFact train, CMRC2018 trial and the Debian Reference dev splits (docs/benchmarks.md, "Hybrid fusion").
FUSION_ALPHA = 0.45
COVERAGE_TAU = 0.6

#: The retrieval fields a search may set for itself (per call, per request), besides ``k`` and ``task``.
SEARCH_FIELDS = (
    "mode",
    "fusion",
    "fusion_alpha",
    "coverage_tau",
    "rrf_k",
    "dense_weight",
    "bm25_weight",
    "mmr",
    "mmr_lambda",
    "rerank_candidates",
    "min_score",
    "source",
    "file_type",
    "page_from",
    "page_to",
    "where",
    "filter",
    "window",
)


def _split_commas(value: object) -> object:
    """Let list fields come from the environment as ``a,b,c``."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _fields(value: object, name: str) -> object:
    """``KEY=VALUE`` strings (repeated flags, or ``a=1,b=2`` from the environment), or a mapping."""
    value = _split_commas(value)
    if isinstance(value, list | tuple):
        return pairs(value, name)
    return value


def check_where(value: object) -> dict[str, Any] | None:
    """A Chroma where filter, given as a mapping or as JSON text, checked by Chroma's own rules (and for lone
    surrogates, which Chroma refuses only when it runs the query); raises ``ValueError`` saying what is wrong."""
    from chromadb.api.types import validate_where

    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as error:
            raise ValueError(f"not JSON: {error}") from None
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise ValueError("a where filter is a JSON object")
    validate_where(value)
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode (a lone surrogate)") from None
    return value


class Settings(BaseSettings):
    """Everything qwen-rag can be told, shared by the CLI and the Python API."""

    model_config = SettingsConfigDict(env_prefix="QWEN_RAG_", extra="forbid", validate_default=True)

    # where the index lives
    store: Path = Field(Path(".qwen-rag"), description="Directory of the persistent Chroma store.")
    chroma_url: str | None = Field(
        None, description="A Chroma server (`chroma run`), http://host:port, used instead of --store."
    )
    collection: str = Field("default", description="Chroma collection name.")
    on_mismatch: OnMismatch = Field(
        OnMismatch.FAIL,
        description="A collection built with another model or dimension: fail, or recreate it (deletes it).",
    )

    # embeddings
    embeddings_url: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="OpenAI-compatible /v1 URL of the embedding server (SGLang). Empty: the embedded model.",
    )
    embeddings_model: str | None = Field(
        None, description="Model name sent to the server; default: the one /v1/models reports."
    )
    api_key: SecretStr = Field(SecretStr("EMPTY"), description="API key of the embedding server.")
    task: str | None = Field(
        None,
        description="Query instruction task for instruction-aware models (Qwen3); default: the task the collection "
        "was ingested with (ingest --task), else the model's own default.",
    )
    dimensions: int | None = Field(None, ge=1, description="Matryoshka output dimension (Qwen3: 32 to width).")
    batch_size: int = Field(32, ge=1, le=2048, description="Texts per embedding request.")
    concurrency: int = Field(4, ge=1, le=64, description="Embedding requests in flight.")
    workers: Workers = Field(
        Workers.AUTO,
        description="Where reading and embedding requests run: 'process' keeps requests in flight while Chroma "
        "writes; 'auto' uses it for an embedding server on Linux.",
    )
    timeout: float = Field(120.0, gt=0, description="Seconds to wait for one embedding request.")
    max_retries: int = Field(4, ge=0, le=20, description="Retries of a failed request (429, 5xx, network).")

    # reading and chunking
    chunk_tokens: int = Field(512, ge=16, description="Target chunk size in tokens of the embedding model.")
    chunk_overlap: int = Field(64, ge=0, description="Tokens of overlap between neighbouring chunks.")
    include: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Glob patterns of files to ingest (default: every known type)."
    )
    exclude: Annotated[list[str], NoDecode] = Field(default_factory=list, description="Glob patterns of files to skip.")
    pdf_password: SecretStr | None = Field(None, description="Password for encrypted PDFs.")
    ocr: OcrMode = Field(
        OcrMode.AUTO,
        description="Recognise text in images and scanned PDF pages: auto (pages without text), always, never.",
    )
    # Auto by default: with the model on every page the shared PDFs read at 1 page/s (3.6 per CPU second); the text
    # rules read them at 17-24 pages/s (58-70 per CPU second) and get their order, tables and headings right
    # (docs/benchmarks.md, PDF).
    layout: LayoutMode = Field(
        LayoutMode.AUTO,
        description="PDF layout model (headers, titles, tables, column order): auto (OCR'd pages), model (every page), "
        "off (text rules only).",
    )
    file_timeout: float = Field(
        600.0, gt=0, description="Seconds one file may take to parse before it is skipped and reported."
    )
    meta: Annotated[dict[str, FieldValue], NoDecode] = Field(
        default_factory=dict,
        description="Your own field on every file of this ingest, KEY=VALUE (repeatable; 2024 and true are typed); "
        "sidecars (NAME.meta.json, qwen-rag.meta.yaml) win over it.",
    )

    # retrieval
    k: int = Field(4, ge=1, le=1000, description="Number of passages to return.")
    # Hybrid with score fusion by default: right on the tutorial's own examples, and above dense and RRF on the
    # test splits of SciFact and CMRC2018 (docs/benchmarks.md, "Hybrid fusion").
    mode: Mode = Field(Mode.HYBRID, description="Retrieval mode: dense, bm25, or hybrid (both, fused).")
    fusion: Fusion = Field(
        Fusion.CONVEX,
        description="Hybrid fusion: convex (normalised scores, BM25 weighed by the query terms a passage covers; "
        "scores in 0..1) or rrf (reciprocal rank).",
    )
    fusion_alpha: float = Field(
        FUSION_ALPHA, ge=0, le=1, description="Convex fusion: weight of the dense score (1 - it: the BM25 score)."
    )
    coverage_tau: float = Field(
        COVERAGE_TAU,
        gt=0,
        le=1,
        description="Convex fusion: the share of the query's term weight a passage must hold for its BM25 score to "
        "count fully (less counts in proportion).",
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant (--fusion rrf).")
    dense_weight: float = Field(1.0, ge=0, description="Weight of the dense ranking in --fusion rrf.")
    bm25_weight: float = Field(1.0, ge=0, description="Weight of the BM25 ranking in --fusion rrf.")
    mmr: bool = Field(False, description="Diversify results with maximal marginal relevance.")
    mmr_lambda: float = Field(0.5, ge=0, le=1, description="MMR: 1 = relevance only, 0 = diversity only.")
    rerank_candidates: int = Field(
        50, ge=1, le=1000, description="First-stage passages handed to the reranker (and to fusion and MMR)."
    )
    min_score: float | None = Field(
        None,
        description="Drop passages scoring below this: cosine similarity (dense), fused score 0..1 (hybrid, convex), "
        "BM25 score over the best hit's (bm25).",
    )
    source: str | None = Field(None, description="Only passages whose source matches this glob.")
    file_type: str | None = Field(None, description="Only passages of this file type (pdf, markdown, code...).")
    page_from: int | None = Field(None, ge=1, description="Only PDF passages from this page on.")
    page_to: int | None = Field(None, ge=1, description="Only PDF passages up to this page.")
    where: dict[str, Any] | None = Field(
        None, description='Only passages matching this Chroma where filter (JSON), e.g. {"year": {"$gte": 2024}}.'
    )
    filter: Annotated[dict[str, FieldValue], NoDecode] = Field(
        default_factory=dict,
        description="Only passages whose FIELD equals VALUE, FIELD=VALUE (repeatable: all must hold; 2024 and true "
        "are typed).",
    )
    window: int = Field(
        0,
        ge=0,
        le=10,
        description="Return each passage with this many chunks before and after it from its file, joined in order.",
    )
    rerank_url: str | None = Field(
        None, description="Reranker: SGLang /v1/rerank or /rerank server URL, or a model dir."
    )
    rerank_model: str | None = Field(None, description="Model name sent to the reranker.")

    _split = field_validator("embeddings_url", "include", "exclude", mode="before")(_split_commas)

    @field_validator("meta", mode="before")
    @classmethod
    def _meta_pairs(cls, value: object) -> object:
        found = _fields(value, "meta")
        return check(found, "meta") if isinstance(found, dict) else found

    @field_validator("filter", mode="before")
    @classmethod
    def _filter_pairs(cls, value: object) -> object:
        found = _fields(value, "filter")
        return values(found, "filter") if isinstance(found, dict) else found

    @field_validator("where", mode="before")
    @classmethod
    def _where_json(cls, value: object) -> object:
        return check_where(value)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_tokens ({self.chunk_tokens})"
            )
        return self
