"""The shapes of the retrieval API: what a request may say and what an answer holds.

Strict: the service takes what its schema says and nothing else (no "4" for 4, no 0 for false), so that clients
written against the OpenAPI spec and the service agree on every request.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from pipelines.errors import ConfigError
from pipelines.settings import Mode, check_where
from pipelines.store.fields import FieldValue, values

MAX_K = 100
MAX_QUERY_CHARS = 4000
_MAX_PAGE_NUMBER = 2**31 - 1  # Chroma compares int metadata as 64-bit; bigger numbers are not bad input to crash on


def _unicode(text: str) -> str:
    """JSON's ``\\ud800`` escapes decode to lone surrogates, which no encoder (UTF-8 answer, model, Chroma) takes.

    Pydantic refuses them in a plain ``str`` field itself, but lets them through an optional one (``str | None``).
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"not valid Unicode: a lone surrogate at position {error.start}") from None
    return text


def _whole_number(value: object) -> object:
    """JSON Schema counts ``4.0`` as an integer; strict pydantic would not."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Text = Annotated[str, AfterValidator(_unicode)]
PageNumber = Annotated[int, Field(ge=1, le=_MAX_PAGE_NUMBER), BeforeValidator(_whole_number)]
Count = Annotated[int, Field(ge=1, le=MAX_K), BeforeValidator(_whole_number)]

_STRICT = ConfigDict(extra="forbid", strict=True)


class Filters(BaseModel):
    """Only passages that match every given field."""

    model_config = _STRICT

    source: Text | None = Field(None, max_length=1000, description="Glob over sources, e.g. `*.pdf` or `docs/*`.")
    file_type: Text | None = Field(
        None, max_length=64, description="File type: pdf, markdown, code, text, html, docx, pptx, xlsx, csv..."
    )
    # page_from > page_to is an empty range, not an error: it matches nothing.
    page_from: PageNumber | None = Field(None, description="Passages from this page (PDF) or slide on.")
    page_to: PageNumber | None = Field(None, description="Passages up to this page (PDF) or slide.")
    fields: dict[str, FieldValue] | None = Field(
        None,
        description='Passages whose fields equal these values, e.g. `{"department": "hr", "year": 2024}`: '
        "your own (ingest `--meta`, sidecars), the document's (`title`, `author`...) or any other.",
    )
    where: dict[str, Any] | None = Field(
        None,
        description='A Chroma where filter, e.g. `{"$or": [{"year": {"$gte": 2024}}, {"draft": true}]}`.',
    )

    @field_validator("fields")
    @classmethod
    def _fields(cls, fields: dict[str, FieldValue] | None) -> dict[str, FieldValue] | None:
        try:
            return None if fields is None else values(fields, "fields")
        except ConfigError as error:
            raise ValueError(str(error)) from None

    @field_validator("where")
    @classmethod
    def _where(cls, where: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_where(where)  # the settings' rule: a where that passes here cannot fail the search


class RetrieveRequest(BaseModel):
    """A search; fields left out take the service's settings."""

    model_config = _STRICT | ConfigDict(
        json_schema_extra={"examples": [{"query": "什么是人工智能？", "k": 2, "mode": "hybrid"}]}
    )

    query: Text = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description="What to look for, in any language; not blank.",
        # In the schema as a pattern, so that clients and schema-driven tools know a blank query is refused; the
        # validator below says why in plainer words than a regex.
        json_schema_extra={"pattern": r"\S"},
    )
    k: Count | None = Field(None, description="Passages to return; default: the service's `--k`.")
    # Not strict: FastAPI validates parsed JSON, where the mode is a string, never a Mode.
    mode: Mode | None = Field(None, strict=False, description="dense, bm25 or hybrid; default: the service's `--mode`.")
    filters: Filters | None = None
    rerank: bool = Field(False, description="Rerank with the service's reranker (`--rerank-url`).")
    min_score: float | None = Field(None, ge=-1, le=1, description="Drop dense passages below this cosine similarity.")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, query: str) -> str:
        if not query.strip():
            raise ValueError("query is blank")
        return query

    def options(self) -> dict[str, Any]:
        """The retriever's per-call options this request asks for (None: the service's default)."""
        filters = self.filters.model_dump() if self.filters else {}
        filters["filter"] = filters.pop("fields", None)  # the retriever's name for them, as the CLI's --filter
        return {**filters, "k": self.k, "mode": self.mode, "min_score": self.min_score, "rerank": self.rerank}


class Passage(BaseModel):
    """One retrieved passage with its citation."""

    text: str
    source: str | None
    file_type: str | None = Field(None, description="pdf, docx, pptx, xlsx, csv, html, markdown, code, image...")
    page: int | None = Field(description="1-based PDF page or slide number; null for other files.")
    start_index: int | None = Field(description="Character offset of the passage in its file (or page).")
    score: float | None = Field(description="Higher is better: cosine similarity (dense), BM25 or fused score.")
    section: str | None = Field(None, description="Heading breadcrumb (Word, EPUB), where known.")
    sheet: str | None = Field(None, description="Sheet name (Excel), where known.")
    row_start: int | None = Field(None, description="First table row in the passage (Excel, CSV), where known.")
    row_end: int | None = Field(None, description="Last table row in the passage (Excel, CSV), where known.")
    title: str | None = Field(None, description="Slide or book title, where known.")
    boxes: list[list[float]] | None = Field(
        None,
        description="PDF: where the passage stands, one [page, x0, top, x1, bottom] per page, in points from the "
        "page's top-left corner.",
    )


class RetrieveResponse(BaseModel):
    query: str
    mode: Mode
    results: list[Passage]
    took_ms: float


class Health(BaseModel):
    status: str
    collection: str
    chunks: int


class ErrorBody(BaseModel):
    detail: str = Field(description="One line saying what went wrong and what to do.")


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not UTF-8."},
    409: {"model": ErrorBody, "description": "No collection yet, or it was built with another model; or no reranker."},
    503: {"model": ErrorBody, "description": "The embedding server or the Chroma store failed."},
}
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody, "description": "Missing or wrong key."}}
