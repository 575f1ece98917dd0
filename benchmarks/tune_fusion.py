"""Tune hybrid fusion on a tuning split: collect each query's candidates once, then score fusion settings offline.

Run ``qwen-rag eval DATASET --split SPLIT --store STORE`` first (it ingests the corpus into ``eval-NAME``); this
script reads that collection through the retriever's own candidate steps (dense top-200 and BM25 top-200, each
candidate's other score computed exactly, as hybrid mode does), so every setting is scored on the same candidates in
seconds. Only tuning splits (train, dev, trial) belong here: the test split is for reporting, with ``qwen-rag eval``.

    python -m benchmarks.tune_fusion ../shared/eval/scifact --split train --store /work/evalstore
"""

from __future__ import annotations

import argparse
import itertools
import pickle
from dataclasses import dataclass
from pathlib import Path

from pipelines.evaluate.beir import load_beir
from pipelines.evaluate.metrics import evaluate_run
from pipelines.evaluate.run import doc_id_of
from pipelines.retrieve.fusion import convex_fusion, reciprocal_rank_fusion
from pipelines.retrieve.lexical import LexicalHit
from pipelines.retrieve.search import open_search
from pipelines.settings import Settings
from pipelines.store.records import SOURCE

DEPTH = 200  # candidates per side, as `qwen-rag eval` asks for
SCALE = 50  # the dense scale is set by the top `rerank_candidates` (the settings' default)


@dataclass
class Candidates:
    dense: dict[str, float]  # every candidate's cosine, dense order first
    dense_order: list[str]
    lexical: dict[str, LexicalHit]  # candidates with a BM25 match
    lexical_order: list[str]
    floor: float | None


def collect(dataset: Path, split: str, store: Path) -> tuple[dict[str, Candidates], dict[str, str], dict]:
    name = dataset.resolve().name
    data = load_beir(dataset, split)
    settings = Settings(store=store, collection=f"eval-{name}")
    retriever = open_search(settings)
    index = retriever._lexical_index()
    out: dict[str, Candidates] = {}
    for qid, text in data.queries.items():
        vector = retriever._embed_query(text, retriever.embeddings)
        dense = retriever._dense_hits(vector, DEPTH, settings)
        dense_order = list(dense)
        hits = index.search(text, DEPTH)
        lexical = {hit.id: hit for hit in hits}
        lexical_order = list(lexical)
        floor = dense_order[:SCALE][-1] if dense_order else None
        others = [cid for cid in dense if cid not in lexical]
        if others:
            lexical |= {hit.id: hit for hit in index.search(text, len(others), only=others)}
        dense |= retriever._cosines(vector, [cid for cid in lexical if cid not in dense])
        out[qid] = Candidates(dense, dense_order, lexical, lexical_order, dense[floor] if floor else None)
    ids = sorted({cid for c in out.values() for cid in c.dense} | {cid for c in out.values() for cid in c.lexical})
    sources: dict[str, str] = {}
    for start in range(0, len(ids), 5000):
        got = retriever.collection.get(ids=ids[start : start + 5000], include=["metadatas"])
        sources.update({cid: doc_id_of(str(m[SOURCE])) for cid, m in zip(got["ids"], got["metadatas"], strict=True)})
    return out, sources, data.qrels


def documents(chunks: list[str], sources: dict[str, str]) -> list[str]:
    return list(dict.fromkeys(sources[cid] for cid in chunks))[:100]


def ndcg(run: dict[str, list[str]], qrels: dict) -> float:
    return float(evaluate_run(run, qrels, ks=(10, 100))["ndcg@10"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--split", required=True, choices=["train", "dev", "trial"])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/qwen-rag-tune"))
    args = parser.parse_args()
    cache = args.cache / f"{args.dataset.resolve().name}-{args.split}.pickle"
    if cache.exists():
        cands, sources, qrels = pickle.loads(cache.read_bytes())
    else:
        cands, sources, qrels = collect(args.dataset, args.split, args.store)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps((cands, sources, qrels)))
    print(f"{args.dataset.name} {args.split}: {len(cands)} queries")
    print(f"dense {ndcg({q: documents(c.dense_order, sources) for q, c in cands.items()}, qrels):.4f}")
    print(f"bm25  {ndcg({q: documents(c.lexical_order, sources) for q, c in cands.items()}, qrels):.4f}")
    rrf = {
        q: documents([cid for cid, _ in reciprocal_rank_fusion([c.dense_order, c.lexical_order])], sources)
        for q, c in cands.items()
    }
    print(f"rrf   {ndcg(rrf, qrels):.4f}")
    for alpha, tau in itertools.product((0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7), (0.3, 0.4, 0.5, 0.6, 0.8, 1.0)):
        run = {
            q: documents(
                [cid for cid, _ in convex_fusion(c.dense, c.lexical, alpha=alpha, tau=tau, dense_floor=c.floor)],
                sources,
            )
            for q, c in cands.items()
        }
        print(f"convex alpha={alpha} tau={tau} {ndcg(run, qrels):.4f}")


if __name__ == "__main__":
    main()
