"""The text of an indexed file around a position, stitched back from the chunks the store holds.

A search hit is one chunk; an agent that wants the paragraphs around it asks :func:`read_around` (the MCP ``read``
tool), and a search may ask for its hits with their neighbours at once (``window=N``: :func:`with_windows`). The
text comes from the store, not the disk, so it works where the files are not (a shared Chroma server) and shows
exactly what was indexed. Every chunk knows its character offset in its file (``start_index``; for PDFs
and slides, in its page) and neighbouring chunks overlap, so the chunks around the offset are laid end to end by
offset, each adding only what the one before did not already hold. Text no chunk holds (the blank lines between
two blocks of a file) becomes one newline.

Table pieces after a table's first one repeat its header lines atop rows that start at their ``start_index``
(:mod:`loaders.chunking`); such a piece is recognised by its claimed end running into the next chunk with text
that does not match (table pieces never overlap), and its repeated header is dropped. The last chunk of a file (or
page) has no next one to tell: if it is such a piece, its header stays, and ``end_index`` counts it.

Sizes are counted by a cheap rule rather than the model's tokenizer (which would load the model for a read): a
CJK character is one token, and so is a run of other letters and digits, and any other symbol that is not space.
Real tokenizers give about as many tokens for Chinese and up to a third more for English.

>>> count_tokens("机器学习 is fun!")
7
>>> from pipelines.store.chroma import Store
>>> collection = Store.open(path="/tmp/qwen-rag-demo").existing("default")          # doctest: +SKIP
>>> read_around(collection, "binary_search.md", start_index=65, tokens=20)          # doctest: +SKIP
Excerpt(source='binary_search.md', root='/work/main/data/samples', page=None, start_index=60, end_index=80, \
text='半边继续，更大就在右半边继续。每一步把查', tokens=20, more_before=True, more_after=True)
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from chromadb.api.models.Collection import Collection
from langchain_core.documents import Document
from pydantic import Field

from pipelines.errors import ConfigError, QwenRagError
from pipelines.retrieve.passages import SPANS
from pipelines.store.paging import pages
from pipelines.store.records import FILE_HASH, POSITION, ROOT, SOURCE, TOTAL

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"  # kana, Han, Hangul syllables
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]")
# A Markdown table's header row and rule, as loaders.tables writes them atop every piece of a long table.
_TABLE_HEADER = re.compile(r"\|[^\n]*\|\n\|(?: *:?-+:? *\|)+\n")


class NotFound(QwenRagError):
    """No such file (or page of it) in the collection."""

    http_status: ClassVar[int] = 404


@dataclass(frozen=True)
class Excerpt:
    """Text of a file between two offsets; its fields' descriptions are what MCP clients see of it."""

    source: str
    root: Annotated[str, Field(description="The ingested folder the file is in.")]
    page: Annotated[int | None, Field(description="The PDF page or slide the offsets are in; null for other files.")]
    start_index: Annotated[int, Field(description="Offset of the text's first character in the file (or page).")]
    end_index: Annotated[int, Field(description="Offset after its last character: read from here to go on.")]
    text: str
    tokens: Annotated[int, Field(description="About how many tokens the text is.")]
    more_before: Annotated[bool, Field(description="Whether the file (or page) has text before start_index.")]
    more_after: Annotated[bool, Field(description="Whether it has text after end_index.")]


@dataclass(frozen=True)
class _Chunk:
    id: str
    start: int


def count_tokens(text: str) -> int:
    """About how many tokens ``text`` is (see the module docstring)."""
    return sum(1 for _ in _TOKEN.finditer(text))


def read_around(
    collection: Collection,
    source: str,
    start_index: int = 0,
    tokens: int = 800,
    page: int | None = None,
    root: str | None = None,
) -> Excerpt:
    """About ``tokens`` tokens of ``source`` around character ``start_index``: a quarter before it, the rest from it
    on (all of it at the start of the file). ``page`` picks a PDF page or slide (default: the first); ``root`` picks
    the ingested folder when two hold a file of that name.

    Raises :class:`NotFound` for a source or page the collection does not hold, ``ConfigError`` for a source in
    several folders without ``root``.
    """
    chunks, root, page = _locate(collection, source, page, root)
    texts: dict[str, str] = {}
    anchor = max(bisect_right([c.start for c in chunks], start_index) - 1, 0)
    # Before the offset first: what the start of the file leaves unused goes to the text after it.
    lo, before_budget = anchor, tokens // 4
    while True:
        before, left = _take_before(_segments(collection, chunks, lo, anchor, texts), start_index, before_budget)
        if left == 0 or lo == 0:
            break
        lo = max(lo - (anchor - lo + 1), 0)  # twice as many chunks each round
    hi, after_budget = anchor, tokens - before_budget + left
    while True:
        segments = _segments(collection, chunks, anchor, hi, texts)
        after, left = _take_after(segments, start_index, after_budget)
        if left == 0 or hi == len(chunks) - 1:
            break
        hi = min(hi + (hi - anchor + 1), len(chunks) - 1)
    parts = before + after
    start = parts[0][0] if parts else start_index
    end = parts[-1][0] + len(parts[-1][1]) if parts else start_index
    text = _join(parts)
    last = segments[-1][0] + len(segments[-1][1]) if segments else end
    return Excerpt(
        source=source,
        root=root,
        page=page,
        start_index=start,
        end_index=end,
        text=text,
        tokens=count_tokens(text),
        more_before=start > chunks[0].start,
        more_after=hi < len(chunks) - 1 or end < last,
    )


# -- which chunks ------------------------------------------------------------------------------------------------


def _locate(
    collection: Collection, source: str, page: int | None, root: str | None
) -> tuple[list[_Chunk], str, int | None]:
    """The chunks of ``source`` (one folder, one page, one version of the file) in order, and that folder and page."""
    where: dict[str, Any] = {SOURCE: source} if root is None else {"$and": [{SOURCE: source}, {ROOT: root}]}
    rows = list(_metadatas(collection, where))
    if not rows:
        raise NotFound(f"no file '{source}' in collection '{collection.name}': use a source as search returns it")
    roots = sorted({str(meta.get(ROOT)) for _, meta in rows})
    if len(roots) > 1:
        raise ConfigError(f"'{source}' is in {len(roots)} ingested folders ({', '.join(roots)}): pass root")
    rows = _current(rows)
    numbers = sorted({meta["page"] for _, meta in rows if isinstance(meta.get("page"), int)})
    if page is None and numbers:
        page = numbers[0]
    elif page is not None and page not in numbers:
        held = f"pages {numbers[0]}-{numbers[-1]}" if numbers else "no pages"
        raise NotFound(f"'{source}' has no page {page} ({held})")
    chunks = [_Chunk(cid, int(meta.get("start_index") or 0)) for cid, meta in rows if meta.get("page") == page]
    return sorted(chunks, key=lambda c: c.start), roots[0], page


def _metadatas(collection: Collection, where: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for batch in pages(collection, include=["metadatas"], where=where):
        yield from zip(batch["ids"], (dict(m or {}) for m in batch["metadatas"] or []), strict=True)


def _current(rows: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """One version of the file: an ingest that updates it holds the old chunks until the new ones are all in
    (see :mod:`pipelines.store.records`), so the complete version wins, else the one with the most chunks."""
    versions: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for row in rows:
        versions.setdefault(str(row[1].get(FILE_HASH)), []).append(row)
    if len(versions) == 1:
        return rows

    def rank(version: list[tuple[str, dict[str, Any]]]) -> tuple[bool, int]:
        complete = any(meta.get(POSITION) == 0 and (meta.get(TOTAL) or 0) > 0 for _, meta in version)
        return complete, len(version)

    return max(versions.values(), key=rank)


# -- stitching ---------------------------------------------------------------------------------------------------


def _segments(
    collection: Collection, chunks: list[_Chunk], lo: int, hi: int, texts: dict[str, str]
) -> list[tuple[int, str]]:
    """The text of chunks ``lo..hi`` as disjoint ``(start, text)`` runs, in order, overlaps taken once.

    The chunk after ``hi`` is read too: it tells whether chunk ``hi`` is a table piece with a repeated header.
    """
    window = chunks[lo : hi + 2]
    missing = [c.id for c in window if c.id not in texts]
    if missing:
        got = collection.get(ids=missing, include=["documents"])
        texts.update(zip(got["ids"], (d or "" for d in got["documents"] or []), strict=True))
    runs: list[tuple[int, str]] = []
    for chunk, following in zip(window[: hi - lo + 1], [*window[1:], None], strict=False):
        start, text = chunk.start, _own_text(texts[chunk.id], chunk.start, following, texts)
        if runs and start <= runs[-1][0] + len(runs[-1][1]):
            run_start, run_text = runs[-1]
            runs[-1] = (run_start, run_text + text[run_start + len(run_text) - start :])
        else:
            runs.append((start, text))
    return runs


def _own_text(text: str, start: int, following: _Chunk | None, texts: dict[str, str]) -> str:
    """``text`` without a table header it repeats: one whose claimed end runs into the next chunk with text that
    does not match there (prose chunks overlap exactly; table pieces never overlap)."""
    if following is None or following.start >= start + len(text):
        return text
    if texts[following.id].startswith(text[following.start - start :]):
        return text
    header = _TABLE_HEADER.match(text)
    if header and start + len(text) - header.end() <= following.start:
        return text[header.end() :]
    return text


def _take_after(segments: list[tuple[int, str]], at: int, budget: int) -> tuple[list[tuple[int, str]], int]:
    """Runs of text from offset ``at`` on, up to ``budget`` tokens; and the budget left (0: it is all used)."""
    parts: list[tuple[int, str]] = []
    for start, text in segments:
        if budget == 0:
            break
        if start + len(text) <= at:
            continue
        offset = max(at - start, 0)
        matches = list(_TOKEN.finditer(text, offset))
        taken = matches[:budget]
        end = taken[-1].end() if len(matches) > budget else len(text)
        if offset < end:
            parts.append((start + offset, text[offset:end]))
        budget -= len(taken)
    return parts, budget


def _take_before(segments: list[tuple[int, str]], at: int, budget: int) -> tuple[list[tuple[int, str]], int]:
    """Runs of text before offset ``at``, up to ``budget`` tokens, in order; and the budget left."""
    parts: list[tuple[int, str]] = []
    for start, text in reversed(segments):
        if budget == 0:
            break
        if start >= at:
            continue
        stop = min(at - start, len(text))
        matches = list(_TOKEN.finditer(text, 0, stop))
        taken = matches[-budget:] if budget else []
        begin = taken[0].start() if len(matches) > budget else 0
        if begin < stop:
            parts.insert(0, (start + begin, text[begin:stop]))
        budget -= len(taken)
    return parts, budget


def _join(parts: list[tuple[int, str]]) -> str:
    """Adjacent runs run on; a gap (text no chunk holds, such as blank lines between blocks) is one newline."""
    out: list[str] = []
    end: int | None = None
    for start, text in parts:
        if end is not None and start > end:
            out.append("\n")
        out.append(text)
        end = start + len(text)
    return "".join(out)


# -- windows around hits -----------------------------------------------------------------------------------------


@dataclass
class _Window:
    """Hits of one file whose windows overlap or touch, merged: chunk positions ``lo..hi``, best hit first."""

    file: tuple[str, str, str]
    lo: int
    hi: int
    hits: list[Document]


def with_windows(collection: Collection, docs: list[Document], n: int) -> list[Document]:
    """Each hit with the ``n`` chunks before and after it in its file, stitched in order like :func:`read_around`.

    Hits of one file whose windows overlap or touch become one passage (at the rank of the better one), so no chunk
    is returned twice; its metadata are the best hit's, with ``spans``: where each hit lies in the text. A chunk
    whose metadata lack the file's position (written by another tool) comes back as it is.
    """
    windows: list[_Window | Document] = []
    for doc in docs:
        meta = doc.metadata
        position = meta.get(POSITION)
        if not isinstance(position, int) or meta.get(SOURCE) is None:
            windows.append(doc)
            continue
        file = (str(meta.get(ROOT)), str(meta[SOURCE]), str(meta.get(FILE_HASH)))
        window = _Window(file, max(position - n, 0), position + n, [doc])
        # The first (best) window of the file it overlaps or touches takes it in, and any later one it now reaches.
        merged: _Window | None = None
        for earlier in list(windows):
            if not isinstance(earlier, _Window) or earlier.file != file or earlier is merged:
                continue
            target = merged or window
            if target.lo <= earlier.hi + 1 and earlier.lo <= target.hi + 1:
                if merged is None:
                    merged = earlier
                    earlier.hits.extend(window.hits)
                    earlier.lo, earlier.hi = min(earlier.lo, window.lo), max(earlier.hi, window.hi)
                else:
                    merged.hits.extend(earlier.hits)
                    merged.lo, merged.hi = min(merged.lo, earlier.lo), max(merged.hi, earlier.hi)
                    windows.remove(earlier)
        if merged is None:
            windows.append(window)
    spans = [w for w in windows if isinstance(w, _Window)]
    if not spans:
        return [w for w in windows if isinstance(w, Document)]
    # One read for every window: each Chroma query with a where scans the collection's metadata once.
    wheres = [_where(w) for w in spans]
    got = collection.get(where=wheres[0] if len(wheres) == 1 else {"$or": wheres}, include=["documents", "metadatas"])
    texts = dict(zip(got["ids"], (d or "" for d in got["documents"] or []), strict=True))
    metadatas: list[dict[str, Any]] = [dict(m or {}) for m in got["metadatas"] or []]
    rows = sorted(zip(got["ids"], metadatas, strict=True), key=lambda row: int(row[1].get(POSITION) or 0))
    return [_stitch_window(collection, w, rows, texts) if isinstance(w, _Window) else w for w in windows]


def _where(window: _Window) -> dict[str, Any]:
    root, source, file_hash = window.file
    clauses: list[dict[str, Any]] = [{SOURCE: source}, {ROOT: root}, {FILE_HASH: file_hash}]
    return {"$and": [*clauses, {POSITION: {"$gte": window.lo}}, {POSITION: {"$lte": window.hi}}]}


def _stitch_window(
    collection: Collection, window: _Window, every: list[tuple[str, dict[str, Any]]], texts: dict[str, str]
) -> Document:
    """The window's chunks, from ``every`` chunk read for all windows (in file order), stitched."""
    rows = [
        (cid, meta)
        for cid, meta in every
        if (str(meta.get(ROOT)), str(meta.get(SOURCE)), str(meta.get(FILE_HASH))) == window.file
        and window.lo <= int(meta.get(POSITION) or 0) <= window.hi
    ]
    # Offsets count within a page (PDF, slides): stitch page by page, a newline between pages.
    by_page: dict[int | None, list[_Chunk]] = {}
    for cid, meta in rows:
        page = meta.get("page")
        by_page.setdefault(page if isinstance(page, int) else None, []).append(
            _Chunk(cid, int(meta.get("start_index") or 0))
        )
    out: list[str] = []
    places: dict[tuple[int | None, int], int] = {}  # (page, file offset of a run) -> its offset in the text
    runs: dict[int | None, list[tuple[int, str]]] = {}
    for page, chunks in by_page.items():
        chunks.sort(key=lambda c: c.start)
        runs[page] = _segments(collection, chunks, 0, len(chunks) - 1, texts)
        if out:
            out.append("\n")
        end: int | None = None
        for start, text in runs[page]:
            if end is not None and start > end:
                out.append("\n")
            places[(page, start)] = sum(map(len, out))
            out.append(text)
            end = start + len(text)
    best = window.hits[0]
    spans = [_span(hit, runs, places) for hit in window.hits]
    metadata = {**best.metadata, SPANS: sorted(span for span in spans if span is not None)}
    return Document(page_content="".join(out), metadata=metadata, id=best.id)


def _span(
    hit: Document, runs: dict[int | None, list[tuple[int, str]]], places: dict[tuple[int | None, int], int]
) -> list[int] | None:
    """Where ``hit`` lies in the stitched text: its offset mapped through the run that holds it."""
    page = hit.metadata.get("page") if isinstance(hit.metadata.get("page"), int) else None
    start = int(hit.metadata.get("start_index") or 0)
    for run_start, text in runs.get(page, []):
        if run_start <= start < run_start + len(text):
            at = places[(page, run_start)] + start - run_start
            # A table piece's text repeats its header, which the stitched run holds once: clip to the run.
            return [at, at + min(len(hit.page_content), run_start + len(text) - start)]
    return None
