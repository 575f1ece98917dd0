"""BM25 quality of pipelines.retrieve.lexical on the shared BEIR-layout sets: whole documents, every document scored.

    python benchmarks/bench_bm25.py                 # the test splits, against the baselines of issue 5
    python benchmarks/bench_bm25.py --ablate        # also the analyzer choices, measured on the tuning splits

SciFact documents are ``title + " " + text`` (as BEIR). The analyzer was tuned only on SciFact train, CMRC2018 trial
and CMRC2018 dev less its 500 test questions (CMRC2018's test split is drawn from dev).
Results (2-core CPU; indexing takes about 2 s per set, a query 0.2-0.3 ms):

    scifact  test   nDCG@10 0.687  recall@100 0.923   baselines: bm25s 0.662, with stemming 0.686
    cmrc2018 test   nDCG@10 0.988  recall@100 1.000   baseline: jieba 0.975
    --ablate, nDCG@10 on SciFact train / CMRC2018 trial / CMRC2018 dev-test:
      shipped (jieba search mode, HMM off, stemming)  0.697 / 0.984 / 0.990
      jieba default mode, HMM off                     0.697 / 0.984 / 0.990
      jieba search mode, HMM on                       0.697 / 0.979 / 0.984
      jieba default mode, HMM on                      0.697 / 0.978 / 0.984
      no stemming                                     0.668 / 0.984 / 0.990
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from pipelines.evaluate.beir import BeirDataset, load_beir
from pipelines.evaluate.metrics import evaluate_run
from pipelines.retrieve import lexical, segment
from pipelines.retrieve.lexical import LexicalIndex
from testbed.shared import shared_dir

BASELINES = {"scifact": "bm25s 0.662, with stemming 0.686", "cmrc2018": "jieba 0.975"}


Patch = Callable[[], AbstractContextManager[object]]


@dataclass(frozen=True)
class Variant:
    """An analyzer choice to compare with the shipped one; ``patch`` swaps it in."""

    name: str
    patch: Patch


def _cut_with(mode: str, hmm: bool) -> Callable[[str], list[str]]:
    def cut(han: str) -> list[str]:
        segmenter = segment._full_tokenizer()
        pieces = segmenter.cut_for_search(han, HMM=hmm) if mode == "search" else segmenter.cut(han, HMM=hmm)
        return [piece for piece in pieces if piece.strip()]

    return cut


VARIANTS = [
    Variant("analyze() as shipped", nullcontext),
    Variant("jieba default mode, HMM off", lambda: mock.patch.object(lexical, "_cut", _cut_with("default", False))),
    Variant("jieba search mode, HMM on", lambda: mock.patch.object(lexical, "_cut", _cut_with("search", True))),
    Variant("jieba default mode, HMM on", lambda: mock.patch.object(lexical, "_cut", _cut_with("default", True))),
    Variant("no stemming", lambda: mock.patch.object(lexical, "_stem", lambda words: words)),
]


def document(fields: dict[str, str]) -> str:
    return f"{fields['title']} {fields['text']}".strip()


def bm25_run(data: BeirDataset, k: int = 100) -> tuple[dict[str, list[str]], float, float]:
    """Index every document, search every query; returns the run and the index and search times (s)."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        index = LexicalIndex.build(Path(directory), ((i, document(d)) for i, d in data.corpus.items()))
        built = time.perf_counter()
        run = {qid: [hit.id for hit in index.search(text, k)] for qid, text in data.queries.items()}
    return run, built - start, time.perf_counter() - built


def tuning_splits(root: Path) -> Iterator[tuple[str, BeirDataset]]:
    yield "scifact train", load_beir(root / "scifact", "train")
    yield "cmrc2018 trial", load_beir(root / "cmrc2018", "trial")
    dev = load_beir(root / "cmrc2018", "dev")
    test = load_beir(root / "cmrc2018", "test").qrels
    qrels = {qid: judged for qid, judged in dev.qrels.items() if qid not in test}
    yield "cmrc2018 dev-test", BeirDataset(dev.corpus, {qid: dev.queries[qid] for qid in qrels}, qrels)


def report(label: str, variant: str, data: BeirDataset, patch: Patch = nullcontext) -> None:
    with patch():
        run, index_s, search_s = bm25_run(data)
    scores = evaluate_run(run, data.qrels)
    print(
        f"{label:<18} {variant:<30} nDCG@10 {scores['ndcg@10']:.4f}  recall@100 {scores['recall@100']:.4f}  "
        f"MRR@10 {scores['mrr@10']:.4f}  ({int(scores['queries'])} q, {len(data.corpus)} docs, "
        f"index {index_s:.1f}s, search {1000 * search_s / max(len(data.queries), 1):.2f} ms/q)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", type=Path, default=shared_dir() / "eval", help="holds scifact/ and cmrc2018/")
    parser.add_argument("--ablate", action="store_true", help="compare analyzer choices on the tuning splits")
    args = parser.parse_args()

    lexical.analyze("预热")  # load jieba's dictionary before any timing
    for name in ("scifact", "cmrc2018"):
        report(f"{name} test", "analyze() as shipped", load_beir(args.eval_dir / name, "test"))
        print(f"{'':<18} baseline: {BASELINES[name]}")
    if args.ablate:
        for label, data in tuning_splits(args.eval_dir):
            for variant in VARIANTS:
                report(label, variant.name, data, variant.patch)


if __name__ == "__main__":
    main()
