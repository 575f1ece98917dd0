"""bm25s (the bm25 mode before issue 17) against the tantivy index (today's) on the very chunks of the eval
collections: nDCG@10, documents ranked by their best chunk, as ``qwen-rag eval`` ranks them; and how often a k=10
search (tantivy's top ``10 + HEADROOM`` re-scored) returns the same ten chunks as a 200-deep one. ``K1`` in the
environment sets bm25s's k1, ``SPLIT`` the split (default: test). Needs the stores ``qwen-rag eval`` builds
(``EVAL_STORE``, default /work/evalstore) and the replaced engine (``pip install bm25s==0.3.16``: no longer a
dependency), so it is not part of ``make bench``:

    python -m benchmarks.bm25_parity scifact cmrc2018
    K1=1.2 python -m benchmarks.bm25_parity scifact        # bm25s at tantivy's k1
    SPLIT=train python -m benchmarks.bm25_parity scifact   # a tuning split (cmrc2018: dev)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import bm25s
import numpy as np

from pipelines.evaluate.beir import load_beir
from pipelines.evaluate.metrics import evaluate_run
from pipelines.evaluate.run import doc_id_of
from pipelines.retrieve.lexical import LexicalIndex, analyze
from pipelines.store.chroma import Store
from pipelines.store.paging import pages
from testbed.shared import shared_dir

DEPTH = 200  # chunks per query, as `qwen-rag eval` asks for


def chunks(name: str) -> tuple[list[str], list[str], dict[str, str]]:
    """The eval collection's chunk ids, texts, and each chunk's document."""
    collection = Store.open(path=os.environ.get("EVAL_STORE", "/work/evalstore")).existing(f"eval-{name}")
    if collection is None:
        raise SystemExit(f"no eval-{name} collection: run `qwen-rag eval` on {name} first")
    ids, texts, docs = [], [], {}
    for page in pages(collection, include=["documents", "metadatas"]):
        for cid, text, meta in zip(page["ids"], page["documents"], page["metadatas"], strict=True):
            ids.append(cid)
            texts.append(text or "")
            docs[cid] = doc_id_of(str(meta["source"]))
    return ids, texts, docs


def bm25s_ranker(ids: list[str], texts: list[str], k1: float):  # type: ignore[no-untyped-def]
    """The old index's search: bm25s over our analyzer's terms, ties to the chunk indexed first."""
    model = bm25s.BM25(k1=k1)
    model.index([analyze(text) for text in texts], show_progress=False)

    def search(query: str) -> list[str]:
        terms = model.get_tokens_ids(analyze(query))
        if not terms:
            return []
        scores = model.get_scores(terms)
        matched = np.flatnonzero(scores > 0)
        return [ids[i] for i in matched[np.lexsort((matched, -scores[matched]))][:DEPTH]]

    return search


def main() -> None:
    k1 = float(os.environ.get("K1", "1.5"))
    for name in sys.argv[1:]:
        data = load_beir(shared_dir() / "eval" / name, os.environ.get("SPLIT", "test"))
        ids, texts, docs = chunks(name)
        old = bm25s_ranker(ids, texts, k1)
        with tempfile.TemporaryDirectory() as directory:
            index = LexicalIndex.build(Path(directory), zip(ids, texts, strict=True))
            runs = {
                f"bm25s k1={k1} (before)": {q: old(text) for q, text in data.queries.items()},
                "tantivy (today)": {q: [h.id for h in index.search(text, DEPTH)] for q, text in data.queries.items()},
            }
            same = sum(
                [h.id for h in index.search(text, 10)] == runs["tantivy (today)"][q][:10]
                for q, text in data.queries.items()
            )
        queries = len(data.queries)
        print(f"{name}: a k=10 search's ten chunks are the 200-deep search's first ten for {same} of {queries} queries")
        for label, run in runs.items():
            ranked = {q: list(dict.fromkeys(docs[c] for c in found))[:100] for q, found in run.items()}
            ndcg = evaluate_run(ranked, data.qrels, ks=(10, 100))["ndcg@10"]
            print(f"{name}, {len(ids)} chunks, {label}: nDCG@10 {ndcg:.4f}", flush=True)


if __name__ == "__main__":
    main()
