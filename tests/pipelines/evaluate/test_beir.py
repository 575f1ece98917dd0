"""Loading BEIR-layout datasets: the shared SciFact and CMRC2018 sets, and clear errors for broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.errors import DatasetError
from pipelines.evaluate.beir import load_beir


def write_dataset(
    root: Path,
    corpus: list[dict[str, object]],
    queries: list[dict[str, object]],
    qrels: dict[str, str],
) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus), encoding="utf-8")
    (root / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries), encoding="utf-8")
    for split, text in qrels.items():
        (root / "qrels" / f"{split}.tsv").write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_dataset(
        tmp_path / "tiny",
        corpus=[{"_id": "d1", "title": "T", "text": "one"}, {"_id": 2, "text": "two"}],
        queries=[{"_id": "q1", "text": "first?"}, {"_id": "q2", "text": "second?"}, {"_id": "q3", "text": "x"}],
        qrels={"test": "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\t2\t2\nq2\t2\t0\n", "train": "q3\td1\t1\n"},
    )


def test_scifact_test_split(shared: Path) -> None:
    data = load_beir(shared / "eval" / "scifact", "test")
    assert len(data.corpus) == 5183 and len(data.queries) == 300
    assert sum(len(judged) for judged in data.qrels.values()) == 339
    assert set(data.queries) == set(data.qrels)
    assert data.corpus["4983"]["title"].startswith("Microstructural development of human newborn")
    assert data.qrels["1"] == {"31715818": 1}


def test_cmrc2018_test_split(shared: Path) -> None:
    data = load_beir(shared / "eval" / "cmrc2018", "test")
    assert len(data.corpus) == 1104 and len(data.queries) == 500
    assert data.queries["DEV_0_QUERY_0"] == "《战国无双3》是由哪两个公司合作开发的？"
    assert data.qrels["DEV_0_QUERY_0"] == {"DEV_0": 1}
    assert data.corpus["DEV_0"]["title"] == "战国无双3"


def test_only_queries_judged_in_the_split_are_loaded(tiny: Path) -> None:
    data = load_beir(tiny, "test")
    assert data.queries == {"q1": "first?", "q2": "second?"}
    assert data.qrels == {"q1": {"d1": 1, "2": 2}, "q2": {"2": 0}}
    assert data.corpus == {"d1": {"title": "T", "text": "one"}, "2": {"title": "", "text": "two"}}
    assert load_beir(tiny, "train").queries == {"q3": "x"}  # a qrels file without a header


def test_an_unknown_split_names_the_file_and_the_splits_there(tiny: Path) -> None:
    with pytest.raises(DatasetError, match=r"qrels/dev\.tsv: no such qrels file \(splits found: test, train\)"):
        load_beir(tiny, "dev")


def test_a_missing_corpus_names_the_file(tiny: Path) -> None:
    (tiny / "corpus.jsonl").unlink()
    with pytest.raises(DatasetError, match=r"corpus\.jsonl: no such file"):
        load_beir(tiny, "test")


def test_bad_json_names_the_file_and_line(tiny: Path) -> None:
    with (tiny / "corpus.jsonl").open("a", encoding="utf-8") as f:
        f.write('{"_id": "d3", "text": \n')
    with pytest.raises(DatasetError, match=r"corpus\.jsonl:3: not JSON"):
        load_beir(tiny, "test")


def test_a_record_without_id_names_the_file_and_line(tiny: Path) -> None:
    (tiny / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\n["not", "an", "object"]\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"queries\.jsonl:2: expected a JSON object with an _id"):
        load_beir(tiny, "test")


def test_a_malformed_qrels_row_names_the_file_and_line(tiny: Path) -> None:
    (tiny / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\tyes\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"test\.tsv:2: expected query-id, corpus-id and an integer score"):
        load_beir(tiny, "test")
    (tiny / "qrels" / "test.tsv").write_text("q1 d1 1\n", encoding="utf-8")  # spaces, not tabs
    with pytest.raises(DatasetError, match=r"test\.tsv:1"):
        load_beir(tiny, "test")


def test_a_judged_query_without_text_is_an_error(tiny: Path) -> None:
    (tiny / "qrels" / "test.tsv").write_text("q9\td1\t1\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"test\.tsv: 1 judged queries are not in .*queries\.jsonl, e\.g\. 'q9'"):
        load_beir(tiny, "test")
