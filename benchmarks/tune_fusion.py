"""Tune hybrid fusion on the tuning splits together: collect each query's candidates once, then score a grid of
settings offline, each checked against the tutorial's own examples.

Run ``qwen-rag eval DATASET --split SPLIT --store STORE`` first for each set (it ingests the corpus into
``eval-NAME``); this script reads those collections through the search's own candidate steps (dense top-200 and
BM25 top-200, each candidate's other score computed exactly, as hybrid mode does) and caches them, so a grid of a
thousand settings over four sets takes minutes. Only tuning splits belong here (train, dev, trial): the test splits
are for reporting, with ``qwen-rag eval``. The grid's scorer is a vectorised copy of :func:`convex_fusion`, checked
against it on every query at the default setting before anything is printed.

    python -m benchmarks.tune_fusion --store /work/evalstore \\
        ../shared/eval/scifact:train ../shared/eval/cmrc2018:trial \\
        ../shared/eval/debref-en2zh:dev ../shared/eval/debref-zh2en:dev
"""

from __future__ import annotations

import argparse
import itertools
import math
import pickle
import re
import shutil
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.embeddings.local import LocalEmbeddings
from pipelines.evaluate.beir import load_beir
from pipelines.evaluate.run import doc_id_of
from pipelines.ingestion.writer import ingest
from pipelines.retrieve import fusion
from pipelines.retrieve.fusion import DENSE_SCALE, convex_fusion, han_share, share_agreement
from pipelines.retrieve.lexical import LexicalHit
from pipelines.retrieve.search import Search, open_search
from pipelines.settings import COVERAGE_TAU, FUSION_ALPHA, Settings
from pipelines.store.records import SOURCE
from testbed.shared import REPO

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LETTER, _WORD = re.compile(r"[A-Za-z]"), re.compile(r"[A-Za-z]+")
SCRIPT_BY = "words"  # what fusion.han_share counts on the Latin side
DEPTH = 200  # candidates per side, as `qwen-rag eval` asks for
#: In the cached candidates' file names: a new one when what the candidates hold changes (v4: BM25 with k1 1.5 and
#: exact lengths, issue 17).
CACHE_VERSION = "v4"
SAMPLES = REPO / "data" / "samples"
TUTORIAL = ("ml.txt", "dl.txt", "nlp.txt", "python.txt", "pentest.txt")  # the tutorial's five sentences
#: The tutorial's examples (tests/scenarios/test_default_search.py): (corpus, query, the files that must come first).
DEMO = [
    ("samples", "什么是人工智能？", ["ml.txt", "dl.txt"]),
    ("samples", "how to implement binary search", ["binary_search.md"]),
    ("samples", "折半查找", ["binary_search.md"]),
    ("samples", "celsius_to_fahrenheit", ["temperature.py"]),
    ("five", "什么是人工智能？", ["ml.txt", "dl.txt"]),
]
GRID = {  # the last round's grid, narrowed to where the best settings were (docs/benchmarks.md, "Hybrid fusion")
    "alpha": (0.4, 0.45, 0.5),
    "tau": (0.5, 0.6, 0.7),
    "coverage_power": (1.25, 1.5),
    "script_power": (2, 3, 4),
    "script_margin": (0.1, 0.2),
    "script_by": ("letters", "words"),
    "dense_scale": (200,),
}
DEFAULT = {
    "alpha": FUSION_ALPHA,
    "tau": COVERAGE_TAU,
    "coverage_power": fusion.COVERAGE_POWER,
    "script_power": fusion.SCRIPT_POWER,
    "script_margin": fusion.SCRIPT_MARGIN,
    "script_by": SCRIPT_BY,
    "dense_scale": DENSE_SCALE,
}


@dataclass
class Candidates:
    """One query's candidates, as hybrid mode sees them."""

    query: str
    dense: dict[str, float]  # every candidate's cosine, dense order first
    dense_order: list[str]
    lexical: dict[str, LexicalHit]  # candidates with a BM25 match
    sources: dict[str, str]  # candidate -> document id
    counts: dict[str, tuple[int, int, int]]  # candidate -> (Han characters, Latin letters, Latin words)


def candidates(search: Search, text: str) -> Candidates:
    vector = search._embed_query(text, search.embeddings)
    dense = search._dense_hits(vector, DEPTH, search.settings)
    dense_order = list(dense)
    index = search._lexical_index()
    lexical = {hit.id: hit for hit in index.search(text, DEPTH)}
    others = [cid for cid in dense if cid not in lexical]
    if others:
        lexical |= {hit.id: hit for hit in index.search(text, len(others), only=others)}
    dense |= search._cosines(vector, [cid for cid in lexical if cid not in dense])
    got = search.collection.get(ids=list(dense), include=["metadatas", "documents"])
    metadatas, documents = got["metadatas"] or [], got["documents"] or []
    sources = {cid: doc_id_of(str(m[SOURCE])) for cid, m in zip(got["ids"], metadatas, strict=True)}
    counts = {cid: script_counts(t or "") for cid, t in zip(got["ids"], documents, strict=True)}
    return Candidates(text, dense, dense_order, lexical, sources, counts)


def script_counts(text: str) -> tuple[int, int, int]:
    return len(_HAN.findall(text)), len(_LETTER.findall(text)), len(_WORD.findall(text))


def share(counts: tuple[int, int, int], by: str) -> float | None:
    """The Han share counting Latin ``letters`` or ``words`` (fusion.han_share is one of the two)."""
    han, letters, words = counts
    latin = letters if by == "letters" else words
    return han / (han + latin) if han + latin else None


def collect(dataset: Path, split: str, store: Path) -> tuple[list[Candidates], list[dict[str, int]]]:
    data = load_beir(dataset, split)
    search = open_search(Settings(store=store, collection=f"eval-{dataset.resolve().name}"))
    queries = [qid for qid in data.queries if data.qrels.get(qid)]
    return [candidates(search, data.queries[qid]) for qid in queries], [data.qrels[qid] for qid in queries]


def collect_demo() -> tuple[list[Candidates], list[list[str]]]:
    local = LocalEmbeddings()
    with tempfile.TemporaryDirectory() as tmp:
        five = Path(tmp) / "five"
        five.mkdir()
        for name in TUTORIAL:
            shutil.copy(SAMPLES / name, five / name)
        searches = {}
        for name, folder in (("samples", SAMPLES), ("five", five)):
            settings = Settings(store=Path(tmp) / name)
            ingest([folder], settings, embeddings=local, progress=False)
            searches[name] = open_search(settings, embeddings=local)
        return [candidates(searches[corpus], query) for corpus, query, _ in DEMO], [first for _, _, first in DEMO]


class Arrays:
    """One query's candidates as arrays, in the order convex_fusion breaks ties in (dense order, then lexical)."""

    def __init__(self, c: Candidates) -> None:
        self.ids = list(dict.fromkeys([*sorted(c.dense, key=lambda cid: -c.dense[cid]), *c.lexical]))
        self.cosine = np.array([c.dense.get(cid, -np.inf) for cid in self.ids])
        self.top = max(c.dense.values())  # over every candidate, as convex_fusion takes it
        self.by_rank = [c.dense[cid] for cid in c.dense_order]  # the dense side's cosines, best first
        best = max((hit.score for hit in c.lexical.values()), default=0.0)
        scores = [c.lexical[cid].score if cid in c.lexical else 0.0 for cid in self.ids]
        self.ratio = np.array(scores) / best if best > 0 else np.zeros(len(self.ids))
        self.coverage = np.array([c.lexical[cid].coverage if cid in c.lexical else 0.0 for cid in self.ids])
        self.gaps = {}
        for by in ("letters", "words"):
            asked = share(script_counts(c.query), by)
            written = [share(c.counts[cid], by) for cid in self.ids]
            self.gaps[by] = np.array([0.0 if asked is None or w is None else abs(asked - w) for w in written])
        self.docs = [c.sources[cid] for cid in self.ids]

    def scores(self, p: dict[str, Any]) -> np.ndarray:
        floor = self.by_rank[: int(p["dense_scale"])][-1]
        span = self.top - floor
        dense = np.ones_like(self.cosine) if span <= 0 else np.clip((self.cosine - floor) / span, 0.0, 1.0)
        margin = p["script_margin"]
        gap = self.gaps[str(p["script_by"])]
        agreement = (1 - np.clip((gap - margin) / (1 - margin), 0.0, 1.0)) ** p["script_power"]
        lexical = self.ratio * np.minimum(1.0, self.coverage / p["tau"]) ** p["coverage_power"] * agreement
        return p["alpha"] * dense + (1 - p["alpha"]) * lexical

    def ranked(self, p: dict[str, Any]) -> dict[str, float]:
        """Documents, best first, with the score of their best chunk."""
        s = self.scores(p)
        best: dict[str, float] = {}
        for j in np.argsort(-s, kind="stable"):
            best.setdefault(self.docs[j], float(s[j]))
        return best


def check_against_fusion(c: Candidates, a: Arrays) -> None:
    """The grid's scorer is convex_fusion at the default setting: same order, same scores."""
    floor = c.dense[c.dense_order[:DENSE_SCALE][-1]]
    asked = share(script_counts(c.query), SCRIPT_BY)
    assert asked == han_share(c.query), "SCRIPT_BY no longer says what fusion.han_share counts"
    agreement = {cid: share_agreement(asked, share(c.counts[cid], SCRIPT_BY)) for cid in c.lexical}
    fused = convex_fusion(
        c.dense, c.lexical, alpha=FUSION_ALPHA, tau=COVERAGE_TAU, dense_floor=floor, agreement=agreement
    )
    mine = a.scores(DEFAULT)
    position = {cid: j for j, cid in enumerate(a.ids)}
    for cid, score in fused:
        assert math.isclose(score, mine[position[cid]], abs_tol=1e-9), (c.query, cid, score, mine[position[cid]])


def ndcg10(queries: list[Arrays], qrels: list[dict[str, int]], p: dict[str, Any]) -> float:
    total = 0.0
    for a, relevant in zip(queries, qrels, strict=True):
        top = list(a.ranked(p))[:10]
        dcg = sum(max(relevant.get(doc, 0), 0) / math.log2(rank + 2) for rank, doc in enumerate(top))
        ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:10]
        total += dcg / sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return total / len(queries)


def demo_margin(queries: list[Arrays], firsts: list[list[str]], p: dict[str, Any]) -> float:
    """The smallest lead of the files that must come first over the next file (below 0: an example is wrong)."""
    worst = math.inf
    for a, files in zip(queries, firsts, strict=True):
        first = [doc_id_of(f) for f in files]  # documents are named as the eval names them
        best = a.ranked(p)
        lead = min(best[f] for f in first) - max(v for doc, v in best.items() if doc not in first)
        in_order = list(best)[: len(first)] == first
        worst = min(worst, lead if in_order else min(lead, -1e-4))
    return worst


def cached(path: Path, make):  # type: ignore[no-untyped-def]
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value))
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", help="DATASET:SPLIT (a BEIR folder and a tuning split)")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/qwen-rag-tune"))
    args = parser.parse_args()
    sets: dict[str, tuple[list[Arrays], list[dict[str, int]]]] = {}
    for spec in args.sets:
        folder, split = spec.rsplit(":", 1)
        if split not in ("train", "dev", "trial"):
            parser.error(f"{spec}: tune on train, dev or trial only (test is for reporting)")
        name = f"{Path(folder).resolve().name}-{split}"
        path = args.cache / f"{name}.{CACHE_VERSION}.pickle"
        found, qrels = cached(path, partial(collect, Path(folder), split, args.store))
        arrays = [Arrays(c) for c in found]
        for c, a in zip(found, arrays, strict=True):
            check_against_fusion(c, a)
        sets[name] = (arrays, qrels)
    demo, firsts = cached(args.cache / f"demo.{CACHE_VERSION}.pickle", collect_demo)
    demo_arrays = [Arrays(c) for c in demo]
    names = list(sets)
    print("setting", *names, "demo margin", sep=" | ")
    dense_only = {**DEFAULT, "alpha": 1.0}
    print("dense", *(f"{ndcg10(*sets[n], dense_only):.4f}" for n in names), "", sep=" | ")
    margin = demo_margin(demo_arrays, firsts, DEFAULT)
    print("default", *(f"{ndcg10(*sets[n], DEFAULT):.4f}" for n in names), f"{margin:.4f}", sep=" | ")
    for values in itertools.product(*GRID.values()):
        p = dict(zip(GRID, values, strict=True))
        figures = [f"{ndcg10(*sets[n], p):.4f}" for n in names]
        label = " ".join(f"{k}={v}" for k, v in p.items())
        print(label, *figures, f"{demo_margin(demo_arrays, firsts, p):.4f}", sep=" | ", flush=True)


if __name__ == "__main__":
    main()
