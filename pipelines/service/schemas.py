"""The shapes of the retrieval API: what a request may say and what an answer holds.

Strict: the service takes what its schema says and nothing else (no "4" for 4, no 0 for false), so that clients
written against the OpenAPI spec and the service agree on every request.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from pipelines.settings import Mode

MAX_K = 100
MAX_QUERY_CHARS = 4000
MAX_WINDOW = 10  # the bound of Settings.window
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


def _not_blank(query: str) -> str:
    if not query.strip():
        raise ValueError("query is blank")
    return query


#: A query: Unicode, not blank (the schema's pattern says so to clients; this says why in plainer words than a regex).
QueryText = Annotated[Text, AfterValidator(_not_blank)]
PageNumber = Annotated[int, Field(ge=1, le=_MAX_PAGE_NUMBER), BeforeValidator(_whole_number)]
Count = Annotated[int, Field(ge=1, le=MAX_K), BeforeValidator(_whole_number)]
Window = Annotated[int, Field(ge=0, le=MAX_WINDOW), BeforeValidator(_whole_number)]
# Chroma's rule for collection names; in the schema by hand, as pydantic leaves a pattern after a validator out.
_COLLECTION_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9._-]*[a-zA-Z0-9]$"
CollectionName = Annotated[
    Text,
    Field(min_length=3, max_length=512, pattern=_COLLECTION_NAME, json_schema_extra={"pattern": _COLLECTION_NAME}),
]

_STRICT = ConfigDict(extra="forbid", strict=True)


# -- filters on any field -----------------------------------------------------------------------------------------
# Chroma's where grammar as types, so the schema says exactly what the service takes (a where it documents is never
# refused, one it does not document never accepted) and Chroma's own check after it cannot fail.

#: A metadata field's name: not an operator ("$and"), not Chroma's "#document", not blank.
FieldName = Annotated[Text, Field(pattern=r"^[^$#\s]", max_length=256)]
_Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]  # Chroma's ints; wider ones are not input to crash on
Scalar = Text | _Int64 | float | bool
_ONE = {"minProperties": 1, "maxProperties": 1, "additionalProperties": False}
# Chroma wants the values of one list all of one type (ints in a list with a float are read as floats).
_Values = (
    Annotated[list[Text], Field(min_length=1, max_length=100)]
    | Annotated[list[_Int64], Field(min_length=1, max_length=100)]
    | Annotated[list[float], Field(min_length=1, max_length=100)]
    | Annotated[list[bool], Field(min_length=1, max_length=100)]
)


def _one_operator(condition: BaseModel) -> BaseModel:
    if len(condition.model_fields_set) != 1:
        raise ValueError('a condition is one operator, e.g. {"$gte": 2024}')
    return condition


class Condition(BaseModel):
    """One operator on a field: ``{"$gte": 2024}``, ``{"$in": ["hr", "legal"]}``, ``{"$contains": "AI"}``..."""

    model_config = _STRICT | ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    # Each defaults to None, "not given", yet is not Optional: a null is no operand, and the schema must not offer it
    # (mypy sees a None default for a non-Optional type, hence the ignores).
    eq: Scalar = Field(None, alias="$eq")  # type: ignore[assignment]
    ne: Scalar = Field(None, alias="$ne")  # type: ignore[assignment]
    gt: _Int64 | float = Field(None, alias="$gt")  # type: ignore[assignment]
    gte: _Int64 | float = Field(None, alias="$gte")  # type: ignore[assignment]
    lt: _Int64 | float = Field(None, alias="$lt")  # type: ignore[assignment]
    lte: _Int64 | float = Field(None, alias="$lte")  # type: ignore[assignment]
    in_: _Values = Field(None, alias="$in")  # type: ignore[assignment]
    nin: _Values = Field(None, alias="$nin")  # type: ignore[assignment]
    contains: Scalar = Field(None, alias="$contains")  # type: ignore[assignment]
    not_contains: Scalar = Field(None, alias="$not_contains")  # type: ignore[assignment]

    _exactly_one = model_validator(mode="after")(_one_operator)


FieldWhere = Annotated[dict[FieldName, Scalar | Condition], Field(min_length=1, max_length=1, json_schema_extra=_ONE)]


class AndWhere(BaseModel):
    """All of two or more filters."""

    model_config = _STRICT | ConfigDict(populate_by_name=False)

    all_of: list[Where] = Field(alias="$and", min_length=2, max_length=32)


class OrWhere(BaseModel):
    """Any of two or more filters."""

    model_config = _STRICT | ConfigDict(populate_by_name=False)

    any_of: list[Where] = Field(alias="$or", min_length=2, max_length=32)


Where = AndWhere | OrWhere | FieldWhere


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
    fields: Annotated[dict[FieldName, Scalar], Field(json_schema_extra={"additionalProperties": False})] | None = Field(
        None,
        description='Passages whose fields equal these values, e.g. `{"department": "hr", "year": 2024}`: '
        "your own (ingest `--meta`, sidecars), the document's (`title`, `author`...) or any other.",
    )
    where: Where | None = Field(
        None,
        description='A Chroma where filter, e.g. `{"$or": [{"year": {"$gte": 2024}}, {"draft": true}]}`.',
    )

    def options(self) -> dict[str, Any]:
        """As the retriever's options: ``fields`` is its ``filter`` (the CLI's ``--filter``)."""
        options = self.model_dump(exclude={"where", "fields"})
        options["filter"] = self.fields
        options["where"] = _plain(self.where)
        return options


def _plain(where: Where | None) -> dict[str, Any] | None:
    """A where as the plain mapping Chroma takes."""
    if where is None:
        return None
    if isinstance(where, AndWhere | OrWhere):
        name, parts = ("$and", where.all_of) if isinstance(where, AndWhere) else ("$or", where.any_of)
        return {name: [_plain(part) for part in parts]}
    return {
        key: value.model_dump(by_alias=True, exclude_unset=True) if isinstance(value, Condition) else value
        for key, value in where.items()
    }


class RetrieveRequest(BaseModel):
    """A search; fields left out take the service's settings."""

    model_config = _STRICT | ConfigDict(
        json_schema_extra={"examples": [{"query": "什么是人工智能？", "k": 2, "mode": "hybrid"}]}
    )

    query: QueryText = Field(
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
    collection: CollectionName | None = Field(
        None, description="The collection to search (see `GET /v1/collections`); default: the service's."
    )
    window: Window | None = Field(
        None,
        description="Return each passage with this many chunks before and after it from its file, joined in order "
        "(`spans` marks the hits in it); default: the service's `--window`.",
    )
    min_score: float | None = Field(None, ge=-1, le=1, description="Drop dense passages below this cosine similarity.")

    def options(self) -> dict[str, Any]:
        """The retriever's per-call options this request asks for (None: the service's default)."""
        filters = self.filters.options() if self.filters else {}
        return {
            **filters,
            "k": self.k,
            "mode": self.mode,
            "min_score": self.min_score,
            "rerank": self.rerank,
            "window": self.window,
        }


Span = Annotated[list[int], Field(min_length=2, max_length=2)]


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
    title: str | None = Field(None, description="The slide's title (PowerPoint), else the document's, where known.")
    boxes: list[list[float]] | None = Field(
        None,
        description="PDF: where the passage stands, one [page, x0, top, x1, bottom] per page, in points from the "
        "page's top-left corner.",
    )
    spans: list[Span] | None = Field(
        None, description="With `window`: where the hits lie in `text`, as [start, end) character offsets."
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


class Collection(BaseModel):
    name: str
    chunks: int
    model: str | None = Field(description="The embedding model that built it; null if qwen-rag did not.")
    dimension: int | None
    task: str | None = Field(description="The query instruction it was ingested with, if any.")


class Collections(BaseModel):
    collections: list[Collection] = Field(description="The collections this key may read, by name.")


class ErrorBody(BaseModel):
    detail: str = Field(description="One line saying what went wrong and what to do.")


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not UTF-8."},
    409: {"model": ErrorBody, "description": "No collection yet, or it was built with another model; or no reranker."},
    503: {"model": ErrorBody, "description": "The embedding server or the Chroma store failed."},
}
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong key."},
    403: {"model": ErrorBody, "description": "The key may not read that collection."},
}
