"""The lexical engine, chosen by measurement (issue 17): tantivy against SQLite FTS5 and the bm25s index they replace,
all fed the same analyzer's terms (pipelines.retrieve.lexical.analyze) as space-separated text.

Documents are ``title + "\\n\\n" + text`` as ``qwen-rag eval`` writes them, one chunk each (close to what the eval
indexes: its chunks rarely split a CMRC2018 paragraph or a SciFact abstract). Queries: each distinct term once for
tantivy (what LexicalIndex does), ``term OR term ...`` ranked by ``bm25()`` for FTS5; top 100 kept.

    python -m benchmarks.bench_lexical
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pipelines.evaluate.beir import BeirDataset, load_beir
from pipelines.evaluate.metrics import evaluate_run
from pipelines.retrieve.lexical import LexicalIndex, analyze
from testbed.shared import shared_dir

Run = dict[str, list[str]]


def document(fields: dict[str, str]) -> str:
    return f"{fields['title']}\n\n{fields['text']}".strip()


def tantivy_run(data: BeirDataset) -> tuple[Run, float, float]:
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        index = LexicalIndex.build(Path(directory), ((i, document(d)) for i, d in data.corpus.items()))
        built = time.perf_counter()
        run = {qid: [hit.id for hit in index.search(text, 100)] for qid, text in data.queries.items()}
        return run, built - start, time.perf_counter() - built


def fts5_run(data: BeirDataset) -> tuple[Run, float, float]:
    db = sqlite3.connect(":memory:")
    # Every letter, number and mark is part of a token: the analyzer's terms split at spaces only.
    db.execute(
        "create virtual table f using fts5(body, tokenize=\"unicode61 remove_diacritics 0 categories 'L* N* Co M*'\")"
    )
    ids = list(data.corpus)
    start = time.perf_counter()
    rows = ((n, " ".join(analyze(document(data.corpus[i])))) for n, i in enumerate(ids))
    db.executemany("insert into f(rowid, body) values (?, ?)", rows)
    db.commit()
    built = time.perf_counter()
    run: Run = {}
    for qid, text in data.queries.items():
        terms = list(dict.fromkeys(analyze(text)))
        match = " OR ".join('"' + term + '"' for term in terms)
        found = db.execute("select rowid from f where f match ? order by bm25(f) limit 100", (match,)) if terms else []
        run[qid] = [ids[row[0]] for row in found]
    return run, built - start, time.perf_counter() - built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", type=Path, default=shared_dir() / "eval", help="holds scifact/ and cmrc2018/")
    args = parser.parse_args()
    analyze("预热")  # jieba's dictionary loads before any timing
    engines: dict[str, Callable[[BeirDataset], tuple[Run, float, float]]] = {"tantivy": tantivy_run, "fts5": fts5_run}
    print("| set | engine | nDCG@10 | recall@100 | index s | search ms/query |\n|---|---|---|---|---|---|")
    for name in ("cmrc2018", "scifact"):
        data = load_beir(args.eval_dir / name, "test")
        for engine, run_of in engines.items():
            run, index_s, search_s = run_of(data)
            scores = evaluate_run(run, data.qrels)
            print(
                f"| {name} test | {engine} | {scores['ndcg@10']:.4f} | {scores['recall@100']:.4f} | {index_s:.1f} | "
                f"{1000 * search_s / max(len(data.queries), 1):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
