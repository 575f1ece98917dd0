"""A retrieved Document as the plain record every surface shows (CLI ``--json``, the HTTP API, MCP, compare):
the text, its citation (source, page or slide, section, sheet and rows) and its score.

>>> from langchain_core.documents import Document
>>> passage(Document("机器学习…", metadata={"source": "ml.txt", "start_index": 0, "score": 0.88, "chunk": 0}))
{'text': '机器学习…', 'source': 'ml.txt', 'file_type': None, 'page': None, 'start_index': 0, 'score': 0.88}
>>> where(passage(Document("…", metadata={"source": "a.xlsx", "sheet": "销售", "row_start": 2, "row_end": 40})))
'a.xlsx [销售] rows 2-40'
>>> where(passage(Document("…", metadata={"source": "deck.pptx", "file_type": "pptx", "page": 2, "title": "目标"})))
'deck.pptx slide 2'
"""

from __future__ import annotations

from typing import Any

from langchain_core.documents import Document

#: Citation keys shown only where the format gives them.
PLACES = ("section", "sheet", "row_start", "row_end", "title")
#: The file types whose ``page`` is a slide.
SLIDES = frozenset({"pptx", "ppt", "odp"})


def passage(doc: Document) -> dict[str, Any]:
    meta = doc.metadata
    row: dict[str, Any] = {
        "text": doc.page_content,
        "source": meta.get("source"),
        "file_type": meta.get("file_type"),
        "page": meta.get("page"),
        "start_index": meta.get("start_index"),
        "score": meta.get("score"),
    }
    row.update({key: meta[key] for key in PLACES if meta.get(key) is not None})
    return row


def where(row: dict[str, Any]) -> str:
    """A one-line citation: ``source p.3 § section``, ``deck.pptx slide 2``, ``source [sheet] rows 2-40``."""
    text = str(row["source"])
    if row.get("page"):
        text += f" slide {row['page']}" if row.get("file_type") in SLIDES else f" p.{row['page']}"
    if row.get("sheet"):
        text += f" [{row['sheet']}]"
    if row.get("row_start") is not None:
        text += f" rows {row['row_start']}-{row.get('row_end', row['row_start'])}"
    if row.get("section"):
        text += f" § {row['section']}"
    return text
