"""Retrieval options for one call: the settings' retrieval fields, overridden per call and validated by the same
field rules as ``Settings`` itself (``k`` from 1 to 1000, a known ``mode``, ...).

A retriever takes them as LangChain retrievers take ``search_kwargs``: at construction
(``build_retriever(settings, search_kwargs={"k": 3})``) or per call (``retriever.invoke(query, k=3, mode="bm25")``).

>>> from pipelines.settings import SEARCH_FIELDS, Settings
>>> options(Settings(), {"k": 3, "mode": "bm25"}).mode
<Mode.BM25: 'bm25'>
>>> options(Settings(), {"colour": "red"})
Traceback (most recent call last):
pipelines.errors.ConfigError: unknown retrieval option 'colour' (known: bm25_weight, coverage_tau, dense_weight, \
file_type, filter, fusion, fusion_alpha, k, min_score, mmr, mmr_lambda, mode, page_from, page_to, rerank, \
rerank_candidates, rrf_k, source, task, where, window)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from pipelines.errors import ConfigError
from pipelines.settings import SEARCH_FIELDS, Settings

#: The settings a call may override.
OVERRIDABLE = frozenset({"k", "task", *SEARCH_FIELDS})
#: Not a setting: whether this call uses the retriever's reranker (when it has one).
RERANK = "rerank"
#: The most passages one call may ask for (the bound of ``Settings.k``).
MAX_K = 1000


def options(settings: Settings, overrides: Mapping[str, Any]) -> Settings:
    """A copy of ``settings`` with ``overrides`` (None values mean "not given"); ``rerank`` is left to the
    caller. Raises ``ConfigError`` naming the bad option."""
    copy = settings.model_copy()
    for name, value in overrides.items():
        if name == RERANK or value is None:
            continue
        if name not in OVERRIDABLE:
            known = ", ".join(sorted(OVERRIDABLE | {RERANK}))
            raise ConfigError(f"unknown retrieval option {name!r} (known: {known})")
        try:
            Settings.__pydantic_validator__.validate_assignment(copy, name, value)
        except ValidationError as error:
            raise ConfigError(f"{name}: {error.errors()[0]['msg']}") from None
    return copy
