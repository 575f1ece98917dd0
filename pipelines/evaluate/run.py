"""``qwen-rag eval``: retrieval quality on a BEIR-layout dataset, through the normal pipeline.

The corpus is written out as one text file per document (title, blank line, text) and ingested like any folder:
the loaders' chunking, the configured embeddings, the Chroma store. So the figures measure what users get, and a
second run costs no embedding (the ingest is incremental). Chunks map back to documents: a document's score is
its best chunk's.

>>> from pipelines.evaluate.run import evaluate
>>> from pipelines.settings import Settings
>>> results = evaluate(Path("../shared/eval/cmrc2018"), "test", Settings(store="/tmp/qwen-rag-eval"))  # doctest: +SKIP
>>> round(results[0].metrics["ndcg@10"], 3)                                                          # doctest: +SKIP
0.96
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np

from pipelines.cache import cache_root
from pipelines.embeddings import Provider, make_embeddings
from pipelines.evaluate.beir import BeirDataset, load_beir
from pipelines.evaluate.metrics import evaluate_run
from pipelines.ingestion.writer import IngestReport, ingest
from pipelines.retrieve.retriever import build_retriever
from pipelines.settings import Mode, Settings
from pipelines.store.chroma import open_store
from pipelines.store.records import SOURCE

#: Documents ranked per query: Recall@100 needs 100 distinct documents.
DEPTH = 100
#: Chunks fetched per query to find DEPTH distinct documents (long documents have several chunks).
CHUNK_DEPTH = 200


@dataclass
class EvalResult:
    """One mode's figures on one split; ``to_json()`` is what ``qwen-rag eval --json`` prints per mode."""

    dataset: str
    split: str
    mode: str
    model: str
    metrics: dict[str, float]
    latency_ms_p50: float
    latency_ms_p95: float
    rerank: bool = False
    ingest: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        metrics = data.pop("metrics")
        return {**metrics, "queries": int(metrics["queries"]), **data}


def doc_filename(doc_id: str) -> str:
    """A file name for a document id that maps back exactly (ids may hold '/' or other odd characters)."""
    return quote(doc_id, safe="") + ".txt"


def doc_id_of(source: str) -> str:
    return unquote(source.removesuffix(".txt"))


def write_corpus(data: BeirDataset, folder: Path) -> Path:
    """One file per document; files whose content is unchanged are left alone."""
    folder.mkdir(parents=True, exist_ok=True)
    for doc_id, doc in data.corpus.items():
        text = f"{doc['title']}\n\n{doc['text']}\n" if doc["title"] else f"{doc['text']}\n"
        path = folder / doc_filename(doc_id)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return folder


def corpus_folder(settings: Settings, dataset: str) -> Path:
    base = settings.store if settings.chroma_url is None else cache_root()
    return Path(base) / "eval-corpus" / dataset


def evaluate(
    dataset_dir: Path,
    split: str,
    settings: Settings,
    *,
    modes: Sequence[Mode] = (Mode.DENSE,),
    embeddings: Provider | None = None,
    progress: bool | None = None,
) -> list[EvalResult]:
    """Ingest the dataset's corpus (cached), run every judged query of ``split`` in each mode, and score it."""
    dataset_dir = Path(dataset_dir)
    name = dataset_dir.resolve().name
    data = load_beir(dataset_dir, split)
    if settings.collection == "default":
        settings = settings.model_copy(update={"collection": f"eval-{name}"})
    embeddings = embeddings if embeddings is not None else make_embeddings(settings)
    folder = write_corpus(data, corpus_folder(settings, name))
    report: IngestReport = ingest([folder], settings, embeddings=embeddings, progress=progress)
    store = open_store(settings)
    results = []
    for mode in modes:
        tuned = settings.model_copy(update={"mode": mode, "k": CHUNK_DEPTH, "rerank_candidates": CHUNK_DEPTH})
        retriever = build_retriever(tuned, embeddings=embeddings, store=store)
        run: dict[str, list[str]] = {}
        latencies = []
        for qid, text in data.queries.items():
            started = time.perf_counter()
            docs = retriever.invoke(text)
            latencies.append((time.perf_counter() - started) * 1000)
            # Results come best first, so a document's first chunk is its best: its rank is that chunk's.
            ranked = dict.fromkeys(doc_id_of(str(d.metadata.get(SOURCE, ""))) for d in docs)
            run[qid] = list(ranked)[:DEPTH]
        results.append(
            EvalResult(
                dataset=name,
                split=split,
                mode=mode.value,
                model=embeddings.model_id,
                metrics=evaluate_run(run, data.qrels, ks=(10, DEPTH)),
                latency_ms_p50=round(float(np.percentile(latencies, 50)), 2),
                latency_ms_p95=round(float(np.percentile(latencies, 95)), 2),
                rerank=settings.rerank_url is not None,
                ingest={k: v for k, v in report.to_json().items() if k != "problems"},
            )
        )
    return results
