"""Ingest throughput (issue 3): pipeline-only rate, saturation, LangChain side by side, unchanged re-ingest.

The embedding server is the SGLang stand-in (testbed/sglang.py) in its own process, with hash vectors, so
that only qwen-rag's own work (loading, chunking, tokenising, HTTP, Chroma) or a fixed server latency counts.

    python -m benchmarks.bench_pipeline [--quick]
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from pipelines.embeddings import make_embeddings
from pipelines.ingestion.writer import WRITE_BATCH, IngestReport, ingest
from pipelines.settings import OnMismatch, Settings, Workers
from pipelines.store.chroma import IndexSignature, Store
from testbed.process import sglang_process

QWEN = "Qwen/Qwen3-Embedding-0.6B"
REPO = Path(__file__).resolve().parents[1]
WORDS = [
    "retrieval",
    "vector",
    "index",
    "chunk",
    "token",
    "server",
    "embedding",
    "store",
    "query",
    "passage",
    "model",
    "context",
    "batch",
    "latency",
    "检索",
    "向量",
    "索引",
    "切分",
    "嵌入",
    "数据库",
    "查询",
    "段落",
    "模型",
    "上下文",
    "批量",
    "延迟",
    "服务器",
]


def make_corpus(folder: Path, files: int, paragraphs: int, seed: int = 0) -> Path:
    """Markdown files of mixed Chinese and English paragraphs (about 150 tokens each)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        paras = [f"# File {f}"] + [
            f"Paragraph {p}. " + " ".join(rng.choice(WORDS) for _ in range(90)) for p in range(paragraphs)
        ]
        (folder / f"doc{f:05d}.md").write_text("\n\n".join(paras) + "\n", encoding="utf-8")
    return folder


def timed_ingest(corpus: Path, store: Path, url: str, **options: object) -> tuple[float, IngestReport]:
    # options: Settings fields by name (workers, concurrency...), passed through untyped
    settings = Settings(store=store, embeddings_url=[url], **options)  # type: ignore[arg-type]
    embeddings = make_embeddings(settings)
    started = time.perf_counter()
    report = ingest([corpus], settings, embeddings=embeddings, progress=False)
    return time.perf_counter() - started, report


def store_alone(store: Path, dim: int) -> float:
    """Vectors per second Chroma's embedded store takes when handed an ingest's own chunks (ids, vectors, texts,
    metadata) alone, in writes of the ingest's size: the most any pipeline could reach with this store."""
    got = Store.open(path=store).existing("default").get(include=["embeddings", "documents", "metadatas"])
    ids, vectors, texts, metas = got["ids"], got["embeddings"], got["documents"], got["metadatas"]
    with tempfile.TemporaryDirectory() as tmp:
        target = Store.open(path=Path(tmp))
        collection = target.collection("alone", IndexSignature("m", dim, "none"), OnMismatch.FAIL)
        started = time.perf_counter()
        for i in range(0, len(ids), WRITE_BATCH):
            part = slice(i, i + WRITE_BATCH)
            target.upsert(collection, ids[part], vectors[part].tolist(), texts[part], metas[part])
        return len(ids) / (time.perf_counter() - started)


def pipeline_only(work: Path, files: int) -> list[str]:
    corpus = make_corpus(work / "corpus", files, paragraphs=12)
    rows = ["| dims | chunks | seconds | chunks/s | store alone, vectors/s | share of the store's rate |"]
    rows.append("|---|---|---|---|---|---|")
    for dim in (384, 1024):
        with sglang_process(dim) as url:
            seconds, report = timed_ingest(corpus, work / f"store-{dim}", url, chunk_tokens=256, chunk_overlap=32)
        rate, alone = report.chunks_written / seconds, store_alone(work / f"store-{dim}", dim)
        rows.append(
            f"| {dim} | {report.chunks_written} | {seconds:.1f} | {rate:.0f} | {alone:.0f} | {rate / alone:.0%} |"
        )
    return rows


def saturation(work: Path, files: int) -> list[str]:
    corpus = make_corpus(work / "sat-corpus", files, paragraphs=12, seed=1)
    dim = 1024
    rows = [
        "| concurrency | workers | chunks | seconds | chunks/s | ceiling c×32/0.1 s | store alone | "
        "target 80% of min | reached |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    runs = [(1, Workers.AUTO), (4, Workers.AUTO), (8, Workers.AUTO), (4, Workers.THREADS)]
    with sglang_process(dim, latency_ms=100) as url:
        for concurrency, workers in runs:
            store = work / f"sat-{concurrency}-{workers.value}"
            seconds, report = timed_ingest(
                corpus,
                store,
                url,
                chunk_tokens=256,
                chunk_overlap=32,
                concurrency=concurrency,
                batch_size=32,
                workers=workers,
            )
            alone = store_alone(store, dim)
            ceiling = concurrency * 32 / 0.1
            rate = report.chunks_written / seconds
            target = 0.8 * min(ceiling, alone)
            mode = "process" if workers == Workers.AUTO else workers.value
            verdict = "met" if rate >= target else "missed"
            rows.append(
                f"| {concurrency} | {mode} | {report.chunks_written} | {seconds:.1f} | {rate:.0f} | {ceiling:.0f} | "
                f"{alone:.0f} | {target:.0f} | {rate / min(ceiling, alone):.0%} ({verdict}) |"
            )
    return rows


def langchain_side_by_side(work: Path, files: int, latency_ms: int) -> list[str]:
    """qwen-rag against Chroma.from_documents and LangChain index() with SQLRecordManager, same corpus and server."""
    from langchain_chroma import Chroma
    from langchain_classic.indexes import SQLRecordManager, index
    from langchain_community.document_loaders import DirectoryLoader, TextLoader
    from langchain_openai import OpenAIEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    corpus = make_corpus(work / f"lc-corpus-{latency_ms}", files, paragraphs=12, seed=2)
    rows = ["| way | first ingest s | chunks | unchanged re-ingest s | re-ingest requests |", "|---|---|---|---|---|"]
    work = work / f"lc-{latency_ms}"
    work.mkdir()
    with sglang_process(1024, latency_ms) as url:
        first, first_report = timed_ingest(corpus, work / "lc-ours", url, chunk_tokens=256, chunk_overlap=32)
        again, report = timed_ingest(corpus, work / "lc-ours", url, chunk_tokens=256, chunk_overlap=32)
        ours = [first, again]
        rows.append(
            f"| qwen-rag | {first:.1f} | {first_report.chunks_written} | {again:.2f} | {report.embedding_requests} |"
        )

        def load() -> list:
            loader = DirectoryLoader(
                str(corpus), glob="*.md", loader_cls=TextLoader, loader_kwargs={"encoding": "utf-8"}
            )
            # ~256 Qwen tokens of this mixed text is about 700 characters.
            splitter = RecursiveCharacterTextSplitter(chunk_size=700, chunk_overlap=90, add_start_index=True)
            return splitter.split_documents(loader.load())

        def lc_embeddings() -> OpenAIEmbeddings:
            return OpenAIEmbeddings(
                model=QWEN, base_url=url, api_key="EMPTY", check_embedding_ctx_length=False, chunk_size=32
            )

        naive: list[float] = []
        for _ in range(2):
            started = time.perf_counter()
            docs = load()
            Chroma.from_documents(
                docs,
                lc_embeddings(),
                persist_directory=str(work / "lc-naive"),
                collection_metadata={"hnsw:space": "cosine"},
            )
            naive.append(time.perf_counter() - started)
        rows.append(f"| Chroma.from_documents | {naive[0]:.1f} | {len(docs)} | {naive[1]:.1f} (duplicates) | all |")

        vectorstore = Chroma(
            collection_name="idx", embedding_function=lc_embeddings(), persist_directory=str(work / "lc-index")
        )
        manager = SQLRecordManager("chroma/idx", db_url=f"sqlite:///{work / 'records.sqlite'}")
        manager.create_schema()
        indexed: list[float] = []
        for _ in range(2):
            started = time.perf_counter()
            docs = load()
            index(docs, manager, vectorstore, cleanup="incremental", source_id_key="source", key_encoder="sha256")
            indexed.append(time.perf_counter() - started)
        rows.append(f"| LangChain index() + SQLRecordManager | {indexed[0]:.1f} | {len(docs)} | {indexed[1]:.2f} | 0 |")
    rows.append("")
    rows.append(
        f"first-ingest speed-up: {naive[0] / ours[0]:.2f}× over Chroma.from_documents, "
        f"{indexed[0] / ours[0]:.2f}× over index(); unchanged re-ingest: {ours[1] / ours[0] * 100:.1f}% of the "
        "first ingest's time"
    )
    return rows


def unchanged_reingest(work: Path, chunks: int) -> list[str]:
    files = max(1, chunks // 12)
    corpus = make_corpus(work / "big-corpus", files, paragraphs=12, seed=3)
    with sglang_process(384) as url:
        first, report = timed_ingest(corpus, work / "big", url, chunk_tokens=160, chunk_overlap=16)
        again, second = timed_ingest(corpus, work / "big", url, chunk_tokens=160, chunk_overlap=16)
    return [
        "| chunks | first ingest s | unchanged re-ingest s | ratio | re-ingest requests | re-ingest chunks written |",
        "|---|---|---|---|---|---|",
        f"| {report.chunks_written} | {first:.1f} | {again:.2f} | {again / first * 100:.1f}% | "
        f"{second.embedding_requests} | {second.chunks_written} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Small corpora, for a smoke run.")
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0
    work = Path(tempfile.mkdtemp(prefix="qwen-rag-bench-"))
    try:
        sections = [
            ("Pipeline-only rate (instant server)", pipeline_only(work, int(640 * scale))),
            ("Saturation (100 ms per request of 32 texts, 1024 dims)", saturation(work, int(640 * scale))),
            (
                "Side by side with LangChain (instant server, 1024 dims)",
                langchain_side_by_side(work, int(100 * scale), 0),
            ),
            (
                "Side by side with LangChain (100 ms per request, 1024 dims)",
                langchain_side_by_side(work, int(100 * scale), 100),
            ),
            ("Unchanged re-ingest of a 10,000-chunk corpus", unchanged_reingest(work, int(10_000 * scale))),
        ]
        for title, rows in sections:
            print(f"\n### {title}\n")
            print("\n".join(rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
