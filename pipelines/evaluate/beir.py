"""Read a dataset in BEIR's layout: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/{split}.tsv``.

>>> data = load_beir(Path("../shared/eval/scifact"), "test")          # doctest: +SKIP
>>> len(data.queries), len(data.corpus)                               # doctest: +SKIP
(300, 5183)
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import DatasetError

__all__ = ["BeirDataset", "load_beir"]


@dataclass
class BeirDataset:
    """``corpus``: doc id -> ``{"title", "text"}``; ``queries``: query id -> text, only the queries judged in the
    split; ``qrels``: query id -> {doc id -> grade}."""

    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(directory: Path, split: str) -> BeirDataset:
    """Load the corpus, the queries judged in ``split`` and their judgments. Errors name the file (and line) at
    fault: a missing file, bad JSON, a record without ``_id``, a malformed qrels row, a judged query with no text."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"{directory}: no such dataset folder (BEIR layout: corpus.jsonl, queries.jsonl, qrels/)")
    qrels_path = directory / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        splits = sorted(p.stem for p in (directory / "qrels").glob("*.tsv"))
        raise DatasetError(f"{qrels_path}: no such qrels file (splits found: {', '.join(splits) or 'none'})")
    qrels = _read_qrels(qrels_path)

    queries_path = directory / "queries.jsonl"
    queries = {}
    for record in _records(queries_path):
        if record["_id"] in qrels:
            queries[record["_id"]] = str(record.get("text") or "")
    if missing := [qid for qid in qrels if qid not in queries]:
        raise DatasetError(
            f"{qrels_path}: {len(missing)} judged queries are not in {queries_path}, e.g. {missing[0]!r}"
        )

    corpus = {
        record["_id"]: {"title": str(record.get("title") or ""), "text": str(record.get("text") or "")}
        for record in _records(directory / "corpus.jsonl")
    }
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels)


def _records(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a .jsonl file, each with a string ``_id``."""
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file (a BEIR dataset has corpus.jsonl and queries.jsonl)") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"{path}:{number}: not JSON ({error.msg})") from None
            if not isinstance(record, dict) or "_id" not in record:
                raise DatasetError(f"{path}:{number}: expected a JSON object with an _id")
            record["_id"] = str(record["_id"])
            yield record


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id <TAB> corpus-id <TAB> score`` rows, after an optional header."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if not row or (number == 1 and row[0] == "query-id"):
                continue
            try:
                query_id, doc_id, grade = row
                qrels.setdefault(query_id, {})[doc_id] = int(grade)
            except ValueError:
                raise DatasetError(f"{path}:{number}: expected query-id, corpus-id and an integer score") from None
    return qrels
