"""Query segmentation from the prepared dictionary equals jieba's own cut over its whole dictionary."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pipelines.retrieve import segment


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QWEN_RAG_CACHE_DIR", str(tmp_path))
    segment._dictionary_path.cache_clear()
    yield tmp_path
    segment._dictionary_path.cache_clear()


def test_query_cut_equals_the_full_dictionary_cut_on_real_questions(cache_dir: Path, shared: Path) -> None:
    questions = [
        json.loads(line)["text"] for line in (shared / "eval" / "cmrc2018" / "queries.jsonl").open(encoding="utf-8")
    ][:400]
    runs = [run for text in questions for run in segment_runs(text)]
    runs += ["中华人民共和国国务院", "二分查找", "折半查找", "什么是人工智能", "向量数据库的检索效果"]
    assert len(runs) > 400
    for han in runs:
        assert segment.cut(han, query=True) == segment.cut(han), han
    assert (cache_dir / "jieba").is_dir()  # the prepared dictionary was written by the first query


def segment_runs(text: str) -> list[str]:
    import re

    return re.findall(r"[\u4e00-\u9fff]+", text)


def test_the_prepared_dictionary_holds_words_and_prefixes(cache_dir: Path) -> None:
    segment.cut("中华人民共和国", query=True)
    (path,) = (cache_dir / "jieba").glob("prefix-dict-*.sqlite")
    with sqlite3.connect(path) as connection:
        rows = dict(
            connection.execute("SELECT word, freq FROM words WHERE word IN ('中华', '中华人民共', '中华人民共和国')")
        )
    assert rows["中华"] > 0 and rows["中华人民共和国"] > 0
    assert rows["中华人民共"] == 0  # a prefix only: jieba walks through it to reach 中华人民共和国


def test_an_unwritable_cache_falls_back_to_the_whole_dictionary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("QWEN_RAG_CACHE_DIR", str(blocker / "cache"))
    segment._dictionary_path.cache_clear()
    try:
        assert segment.cut("二分查找", query=True) == segment.cut("二分查找")
    finally:
        segment._dictionary_path.cache_clear()
