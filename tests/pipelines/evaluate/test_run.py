"""`qwen-rag eval` and `compare` on a small BEIR-layout dataset drawn from the shared CMRC2018 set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.evaluate.beir import load_beir
from pipelines.evaluate.run import doc_filename, doc_id_of


@pytest.fixture(scope="module")
def small_beir(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 CMRC2018 paragraphs and the trial queries judged on them, in BEIR layout (built in a temp dir)."""
    source = load_beir(shared / "eval" / "cmrc2018", "trial")
    qids = sorted(source.qrels)[:12]
    doc_ids = sorted({d for q in qids for d in source.qrels[q]})
    others = [d for d in sorted(source.corpus) if d not in doc_ids][: 40 - len(doc_ids)]
    folder = tmp_path_factory.mktemp("beir") / "cmrc-small"
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as out:
        for d in doc_ids + others:
            out.write(json.dumps({"_id": d, **source.corpus[d]}, ensure_ascii=False) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as out:
        for q in qids:
            out.write(json.dumps({"_id": q, "text": source.queries[q]}, ensure_ascii=False) + "\n")
    with open(folder / "qrels" / "test.tsv", "w", encoding="utf-8") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for q in qids:
            for d, grade in source.qrels[q].items():
                out.write(f"{q}\t{d}\t{grade}\n")
    return folder


def test_doc_ids_survive_the_round_trip_through_file_names() -> None:
    for odd in ("a/b", "中文 id", "..", "x.txt"):
        assert doc_id_of(doc_filename(odd)) == odd


@pytest.mark.slow
def test_eval_scores_every_mode_and_caches_the_index(small_beir: Path, tmp_path: Path) -> None:
    store, reports = tmp_path / "store", tmp_path / "reports"
    args = ["eval", str(small_beir), "--store", str(store), "--modes", "dense,bm25,hybrid"]
    result = CliRunner().invoke(main, [*args, "--report-dir", str(reports), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["mode"] for r in rows] == ["dense", "bm25", "hybrid"]
    for row in rows:
        assert {"ndcg@10", "recall@10", "recall@100", "mrr@10", "queries"} <= set(row)
        assert row["queries"] == 12
        assert 0.5 < row["ndcg@10"] <= 1.0  # 40 paragraphs: any working retriever finds most answers
        assert row["latency_ms_p95"] >= row["latency_ms_p50"] > 0
    assert rows[0]["ingest"]["added"] == 40
    assert (reports / "cmrc-small-test.md").read_text(encoding="utf-8").count("|") > 20
    assert (reports / "cmrc-small-test.svg").read_text(encoding="utf-8").startswith("<svg")
    again = CliRunner().invoke(main, [*args, "--report-dir", str(reports), "--json"], catch_exceptions=False)
    assert json.loads(again.stdout)[0]["ingest"]["embedding_requests"] == 0  # the second run re-embeds nothing
    assert [r["ndcg@10"] for r in json.loads(again.stdout)] == [r["ndcg@10"] for r in rows]


@pytest.mark.slow
def test_compare_two_modes_side_by_side(small_beir: Path, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    result = CliRunner().invoke(
        main,
        [
            "compare",
            "“哈尔滨”这个名字来源于什么？",
            "--store",
            store,
            "--collection",
            "eval-cmrc-small",
            "-k",
            "3",
            "--a",
            "mode=dense",
            "--b",
            "mode=bm25",
            "--dataset",
            str(small_beir),
            "--json",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    [query] = report["queries"]
    assert len(query["a"]) == 3 and len(query["b"]) == 3 and 0 <= query["overlap"] <= 1
    assert report["a_metrics"][0]["mode"] == "dense" and report["b_metrics"][0]["mode"] == "bm25"
    text = CliRunner().invoke(
        main,
        [
            "compare",
            "哈尔滨",
            "--store",
            store,
            "--collection",
            "eval-cmrc-small",
            "--a",
            "mode=dense",
            "--b",
            "mode=hybrid",
        ],
        catch_exceptions=False,
    )
    assert "| rank | mode=dense | mode=hybrid |" in text.stdout


def test_compare_rejects_unknown_fields(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compare", "q", "--store", str(tmp_path), "--a", "colour=blue"])
    assert result.exit_code == 1
    assert "colour=blue" in result.stderr
