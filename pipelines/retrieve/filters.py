"""Metadata filters as one Chroma ``where``: file type, page range, a glob over sources (Chroma cannot match globs
itself, so a glob becomes the list of the collection's sources it matches), ``filter`` (FIELD=VALUE on any field,
the user's own included) and ``where`` (Chroma's own JSON), all of which must hold.

Every mode filters with it: dense passes it to Chroma's query, BM25 scores only the chunks Chroma finds for it
(the retriever's ``_allowed_ids``), so a filter never makes a search come back short of k while k chunks match.

>>> from pipelines.settings import Settings
>>> where(Settings(file_type="pdf", page_from=2), lambda: [])
{'$and': [{'file_type': 'pdf'}, {'page': {'$gte': 2}}]}
>>> where(Settings(source="*.md"), lambda: ["a.md", "b.txt"])
{'source': {'$in': ['a.md']}}
>>> where(Settings(filter=["department=hr"], where={"year": {"$gte": 2024}}), lambda: [])
{'$and': [{'department': 'hr'}, {'year': {'$gte': 2024}}]}
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from pipelines.settings import Settings
from pipelines.store.records import SOURCE


def where(options: Settings, sources: Callable[[], list[str]]) -> dict[str, Any] | None:
    """The ``where`` for ``options``' filters, or None when there are none; ``sources`` lists the collection's
    sources, called only for a source glob."""
    clauses: list[dict[str, Any]] = []
    if options.file_type:
        clauses.append({"file_type": options.file_type})
    if options.page_from is not None:
        clauses.append({"page": {"$gte": options.page_from}})
    if options.page_to is not None:
        clauses.append({"page": {"$lte": options.page_to}})
    if options.source:
        matching = [src for src in sources() if fnmatch.fnmatchcase(src, options.source)]
        # No match must match nothing, not everything.
        clauses.append({SOURCE: {"$in": matching or ["\x00none"]}})
    clauses.extend({name: value} for name, value in options.filter.items())
    if options.where:
        clauses.append(options.where)
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}
