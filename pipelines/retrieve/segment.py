"""Chinese word segmentation for BM25: jieba, with its dictionary held two ways.

Documents are cut by jieba's own tokenizer over its whole prefix dictionary (about 500,000 entries, loaded once per
process: 0.6 s on a quiet machine, several seconds on a busy one). A query is a few dozen characters, and loading the
whole dictionary for it was the largest single cost of ``qwen-rag query`` (docs/benchmarks.md, "Start-up"). So the
prefix dictionary is also written once (by the ingest, which loads it anyway, or by the first query that finds it
missing) into an indexed SQLite file in the cache directory, and a query's tokenizer
gets only the entries for its own substrings: one indexed look-up, a few milliseconds. The cut is jieba's own code
over those entries, so a query is segmented exactly as the same text in a document (a test holds the two equal).

Why not a smaller dictionary or another segmenter: the index was built with jieba's full dictionary, and a query
must be cut the same way to match it.

>>> cut("向量数据库的检索", query=True) == cut("向量数据库的检索")
True
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
import threading
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.cache import cache_root

if TYPE_CHECKING:
    import jieba

__all__ = ["cut", "prepare"]

#: jieba's longest dictionary word has 16 characters: no longer substring can be an entry.
_LONGEST = 16
_local = threading.local()


def cut(han: str, *, query: bool = False) -> list[str]:
    """Segment a run of Han characters in search mode without HMM (why: :func:`pipelines.retrieve.lexical.analyze`).
    ``query=True``: look up only this text's substrings in the prepared dictionary instead of loading all of it
    (where the cache directory cannot hold it, the whole dictionary is loaded after all)."""
    if not query:
        tokenizer = _full_tokenizer()
        _prepare(_dictionary_path())
        return _terms(tokenizer, han)
    try:
        return _terms(_query_tokenizer(han), han)
    except (OSError, sqlite3.Error) as error:
        logging.getLogger(__name__).debug("query dictionary unavailable (%s): loading the whole one", error)
        return _terms(_full_tokenizer(), han)


def _terms(tokenizer: jieba.Tokenizer, han: str) -> list[str]:
    return [term for term in tokenizer.cut_for_search(han, HMM=False) if term.strip()]


@cache
def _full_tokenizer() -> jieba.Tokenizer:
    """jieba's tokenizer with its whole dictionary, once per process, without the "Building prefix dict..." lines it
    writes to stderr."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


def prepare() -> None:
    """Write the query dictionary if the cache directory lacks it (an ingest calls this: the front analyses texts in
    another process, whose first Chinese text would write it only there)."""
    _prepare(_dictionary_path())


@cache
def _prepare(path: Path) -> None:
    """Write the query dictionary at ``path`` if it is missing, once per path and process: an ingest has the whole
    dictionary loaded anyway, so its first Chinese text pays for the file that spares every later query."""
    if path.exists():
        return
    tokenizer = _full_tokenizer()
    try:
        _write_dictionary(tokenizer.FREQ, tokenizer.total)
    except (OSError, sqlite3.Error) as error:  # a read-only cache: queries will load the whole dictionary
        logging.getLogger(__name__).debug("cannot write the query dictionary: %s", error)


def _query_tokenizer(text: str) -> jieba.Tokenizer:
    import jieba

    frequencies, total = _lookup(text)
    tokenizer = jieba.Tokenizer()
    # The three attributes initialize() would set from the whole dictionary; cut_for_search reads only these.
    tokenizer.FREQ = frequencies
    tokenizer.total = total
    tokenizer.initialized = True
    return tokenizer


def _lookup(text: str) -> tuple[dict[str, int], int]:
    """The dictionary entries (words and word prefixes) among ``text``'s substrings, and the total frequency."""
    if not _dictionary_path().exists():
        full = _full_tokenizer()
        _write_dictionary(full.FREQ, full.total)  # raises where it cannot: the caller uses the full tokenizer
    connection = getattr(_local, "connection", None)
    if connection is None:  # sqlite3 connections stay in their thread
        connection = sqlite3.connect(f"file:{_dictionary_path()}?mode=ro", uri=True)
        _local.connection = connection
    substrings = sorted(
        {
            text[start:end]
            for start in range(len(text))
            for end in range(start + 1, min(len(text), start + _LONGEST) + 1)
        }
    )
    found: dict[str, int] = {}
    # SQLite allows 32,766 parameters per statement: a long text is looked up in slices.
    for offset in range(0, len(substrings), 30_000):
        part = substrings[offset : offset + 30_000]
        rows = connection.execute(f"SELECT word, freq FROM words WHERE word IN ({','.join('?' * len(part))})", part)
        found.update(rows)
    (total,) = connection.execute("SELECT total FROM meta").fetchone()
    return found, int(total)


@cache
def _dictionary_path() -> Path:
    import importlib.metadata

    version = importlib.metadata.version("jieba")
    return cache_root() / "jieba" / f"prefix-dict-{version}.sqlite"


def _write_dictionary(frequencies: dict[str, int], total: int) -> None:
    """Write the prefix dictionary atomically: a reader sees no file or the whole one, never part of it."""
    path = _dictionary_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=".prefix-dict.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        with sqlite3.connect(staging) as connection:
            connection.execute("CREATE TABLE words (word TEXT PRIMARY KEY, freq INTEGER NOT NULL) WITHOUT ROWID")
            connection.execute("CREATE TABLE meta (total INTEGER NOT NULL)")
            connection.executemany("INSERT INTO words VALUES (?, ?)", frequencies.items())
            connection.execute("INSERT INTO meta VALUES (?)", (total,))
        connection.close()
        os.replace(staging, path)
    finally:
        Path(staging).unlink(missing_ok=True)
