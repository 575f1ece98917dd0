"""The user's own metadata fields on chunks: which names qwen-rag keeps for itself, which values Chroma takes, and
``KEY=VALUE`` as the command line, the environment and the sidecars give them.

One module for both ends of a field: the ingest writes them (``--meta``, sidecars: :mod:`pipelines.ingestion.sidecars`)
and the retriever filters on them (``--filter``: :mod:`pipelines.retrieve.filters`), so a value is typed the same
way on both sides and ``--meta year=2024`` is found by ``--filter year=2024``.

>>> typed("2024"), typed("0.5"), typed("true"), typed("hr"), typed('"2024"')
(2024, 0.5, True, 'hr', '2024')
>>> pairs(["department=hr", "year=2024"], "meta")
{'department': 'hr', 'year': 2024}
>>> check(pairs(["page=3"], "meta"), "meta")
Traceback (most recent call last):
pipelines.errors.ConfigError: meta: 'page' is qwen-rag's own metadata; choose another name
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from pipelines.errors import ConfigError

#: What Chroma stores as a metadata value (its rule: no None, lists or objects).
FieldValue = str | int | float | bool
Fields = dict[str, FieldValue]

#: Keys written on each chunk by the ingest's records (:mod:`pipelines.store.records`), by the loaders (citations
#: and reading details), and by the retriever on results. A user field of the same name would break the records or
#: a citation, so it is refused. The document properties (``title``, ``author``, ``created``, ``modified``) are not
#: here: a user's value for one of them replaces the file's own (a plain-text file has no title of its own).
RESERVED = frozenset(
    {
        # records
        "root",
        "source",
        "file_hash",
        "chunker",
        "chunk",
        "chunks",
        "chunk_hash",
        "meta_hash",
        "meta_keys",
        # loaders
        "file_type",
        "page",
        "section",
        "sheet",
        "cell",
        "row_start",
        "row_end",
        "start_index",
        "table_header",
        "language",
        "tokens",
        "ocr",
        "document_title",
        # the retriever's
        "score",
        "dense_score",
        "bm25_score",
    }
)
#: Properties the loaders read from the file itself; a user field of the same name wins over them.
DOCUMENT_PROPERTIES = frozenset({"title", "author", "created", "modified"})


def typed(text: str) -> FieldValue:
    """A value as typed on a command line: a JSON number, ``true``/``false`` or a JSON string, else the text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return text  # null, lists, objects, NaN: kept as the text the user wrote


def check(fields: Mapping[str, Any], where: str) -> Fields:
    """``fields`` if every name is free and every value is one Chroma takes; else ``ConfigError`` naming ``where``
    (the setting, or the sidecar file) and the first bad field."""
    for key in fields:
        if key in RESERVED:
            raise ConfigError(f"{where}: {key!r} is qwen-rag's own metadata; choose another name")
    return values(fields, where)


def values(fields: Mapping[str, Any], where: str) -> Fields:
    """``fields`` if every name is one Chroma takes and every value a string, number or bool; else ``ConfigError``."""
    out: Fields = {}
    for key, value in fields.items():
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(f"{where}: a field needs a name")
        if key.startswith("$"):
            raise ConfigError(f"{where}: field names cannot start with '$' ({key!r})")
        if not isinstance(value, str | int | float | bool):
            kind = "null" if value is None else type(value).__name__
            raise ConfigError(f"{where}: {key!r} must be a string, number or true/false, not {kind}")
        if (isinstance(value, float) and not math.isfinite(value)) or (
            isinstance(value, int) and not -(2**63) <= value < 2**63
        ):
            raise ConfigError(f"{where}: {key!r} is {value}, which Chroma cannot store")
        if not _unicode(key) or (isinstance(value, str) and not _unicode(value)):
            raise ConfigError(f"{where}: {key!r} is not valid Unicode (a lone surrogate)")
        out[key] = value
    return out


def _unicode(text: str) -> bool:
    """Whether ``text`` can be encoded at all (JSON's ``\\ud800`` decodes to a lone surrogate, which cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def pairs(items: Iterable[str], where: str) -> Fields:
    """``KEY=VALUE`` strings as fields (values by :func:`typed`); a later key wins over an earlier one."""
    fields: Fields = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{where}: {item!r} is not KEY=VALUE")
        fields[key.strip()] = typed(value.strip())
    return fields


def fields_hash(fields: Mapping[str, FieldValue]) -> str:
    """A digest of a set of fields, the same whatever their order (and 1 and 1.0 and True kept apart)."""
    canonical = json.dumps(sorted((k, type(v).__name__, v) for k, v in fields.items()), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
