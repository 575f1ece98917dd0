"""Tables kept whole: the chunker's row pieces under a repeated header, and HTML tables as table Documents."""

from __future__ import annotations

import random
import time
from itertools import pairwise
from pathlib import Path

import pytest
from langchain_core.documents import Document

from loaders.chunking import Chunker, ChunkSpec
from loaders.html import HtmlFileLoader
from loaders.tables import TABLE_HEADER, table_document
from loaders.tokens import TokenCounter, qwen_tokenizer
from tests.loaders.test_chunking import CharsWithJoinPenalty

TOK = qwen_tokenizer()
HANZI = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可也你能而子那得里后自之"
PLACES = "北京上海广州深圳成都重庆杭州武汉西安苏州南京天津长沙郑州东莞青岛沈阳宁波昆明乌鲁木齐呼和浩特"


def chinese_table(rows: int, seed: int = 7, note_chars: tuple[int, int] = (0, 40), row_start: int = 2) -> Document:
    """城市 | 人口 | 面积 rows with cells from two characters to a long note."""
    rng = random.Random(seed)
    body = []
    for i in range(rows):
        city = "".join(rng.choices(PLACES, k=rng.randint(2, 6))) + f"{i}号市"
        people = f"{rng.randint(10, 3000)}.{rng.randint(0, 9)}万"
        area = f"约{rng.randint(100, 20000)}平方公里" + "".join(rng.choices(HANZI, k=rng.randint(*note_chars)))
        body.append([city, people, area])
    return table_document(["城市", "人口", "面积"], body, {"source": "cities.xlsx", "row_start": row_start})


def check_table(
    chunks: list[Document], doc: Document, spec: ChunkSpec, counter: TokenCounter = TOK
) -> list[tuple[int, int]]:
    """The guarantees of table chunks; returns each chunk's own span (after any repeated header) in the text."""
    text, header = doc.page_content, doc.metadata[TABLE_HEADER]
    base = int(doc.metadata.get("start_index") or 0)
    spans = []
    for chunk in chunks:
        content, start = chunk.page_content, chunk.metadata["start_index"] - base
        assert TABLE_HEADER not in chunk.metadata
        assert chunk.metadata["tokens"] == counter.count(content) + counter.special_tokens <= spec.chunk_tokens
        assert content and content.strip() == content
        own = content[len(header) + 1 :] if start and content.startswith(header + "\n") else content
        assert text[start : start + len(own)] == own, "start_index must locate the chunk's own text"
        spans.append((start, start + len(own)))
    assert all(a[1] <= b[0] for a, b in pairwise(spans)), "in order, no overlap"
    covered = [False] * len(text)
    for start, end in spans:
        covered[start:end] = [True] * (end - start)
    assert all(done or ch.isspace() for ch, done in zip(text, covered, strict=True)), "all text is in some chunk"
    return spans


def rows_of(chunk: Document, header: str) -> list[str]:
    return chunk.page_content.removeprefix(header + "\n").split("\n")


# -- the chunker ------------------------------------------------------------------------------------------------


def test_a_long_chinese_table_is_split_between_rows_under_its_header() -> None:
    doc = chinese_table(200)
    header, lines = doc.metadata[TABLE_HEADER], doc.page_content.split("\n")[2:]
    assert TOK.count(doc.page_content) > 20 * 256
    spec = ChunkSpec(256, 32)
    chunks = Chunker(TOK, spec).split(doc)
    check_table(chunks, doc, spec)
    assert all(c.page_content.startswith(header + "\n") for c in chunks)
    assert [row for c in chunks for row in rows_of(c, header)] == lines, "every row once, in order, whole"
    assert chunks[0].metadata["start_index"] == 0
    for chunk in chunks:
        first = chunk.metadata["row_start"] - 2
        assert rows_of(chunk, header) == lines[first : chunk.metadata["row_end"] - 2 + 1]
        if chunk is not chunks[0]:  # (the first starts at the header, the text's own start)
            assert doc.page_content[chunk.metadata["start_index"] :].startswith(lines[first])
        assert chunk.metadata["source"] == "cities.xlsx"
    assert [c.metadata["row_start"] for c in chunks[1:]] == [c.metadata["row_end"] + 1 for c in chunks[:-1]]
    assert (chunks[0].metadata["row_start"], chunks[-1].metadata["row_end"]) == (2, 201)
    # As few pieces as filling each up would give.
    full, pieces = "", 0
    for line in lines:
        if not full or TOK.count(full + "\n" + line) + 1 > 256:
            full, pieces = header + "\n" + line, pieces + 1
        else:
            full += "\n" + line
    assert len(chunks) == pieces


def test_a_table_just_over_the_budget_is_cut_in_two_even_pieces() -> None:
    doc = chinese_table(6)
    assert 256 < TOK.count(doc.page_content) < 400
    first, second = Chunker(TOK, ChunkSpec(256, 32)).split(doc)
    longest_row = max(TOK.count(line) for line in doc.page_content.split("\n"))
    assert abs(first.metadata["tokens"] - second.metadata["tokens"]) <= longest_row  # not 250 then 90


def test_a_table_that_fits_is_one_chunk() -> None:
    doc = chinese_table(5)
    doc.metadata["start_index"] = 300
    spec = ChunkSpec(512, 64)
    (chunk,) = Chunker(TOK, spec).split(doc)
    assert chunk.page_content == doc.page_content
    assert chunk.metadata == {
        "source": "cities.xlsx",
        "row_start": 2,
        "start_index": 300,
        "tokens": TOK.count(doc.page_content) + 1,
        "row_end": 6,
    }
    assert TABLE_HEADER in doc.metadata  # the input is left alone


def test_an_over_long_row_is_cut_by_the_prose_rules_under_the_header() -> None:
    doc = chinese_table(6, note_chars=(2, 5))
    long_note = "，".join(f"第{i}条备注说明这座城市的历史与地理" for i in range(60)) + "。"
    lines = doc.page_content.split("\n")
    lines[4] = lines[4][: -len(" |")] + long_note + " |"  # the third row: about 800 tokens
    doc = Document("\n".join(lines), metadata=doc.metadata)
    header = doc.metadata[TABLE_HEADER]
    spec = ChunkSpec(128, 16)
    chunks = Chunker(TOK, spec).split(doc)
    spans = check_table(chunks, doc, spec)
    assert all(c.page_content.startswith(header + "\n") for c in chunks)
    parts = [(c, span) for c, span in zip(chunks, spans, strict=True) if c.metadata["row_start"] == 4]
    assert len(parts) > 6 and all(c.metadata["row_end"] == 4 for c, _ in parts)
    assert all(c.page_content.endswith(("，", "。 |")) for c, _ in parts), "cut at clauses"
    assert "".join(doc.page_content[s:e] for _, (s, e) in parts) == lines[4]
    assert parts[0][0].metadata["start_index"] == doc.page_content.index(lines[4])
    others = [row for c in chunks if c.metadata["row_start"] != 4 for row in rows_of(c, header)]
    assert others == lines[2:4] + lines[5:], "the other rows stay whole"


@pytest.mark.parametrize("chunk_tokens", [8, 12, 20, 24, 40, 64])
def test_the_cap_holds_on_awkward_tables(chunk_tokens: int) -> None:
    rng = random.Random(chunk_tokens)
    spec = ChunkSpec(chunk_tokens, chunk_tokens // 4)
    chunker = Chunker(TOK, spec)
    cells = ["😀🦩🫠", "x" * 300, "很长的一句话没有标点" * 8, "a | b", "", "1,000", "e\u0301"]
    for n in range(30):
        width = rng.randint(1, 4)
        header = ["".join(rng.choices(HANZI, k=rng.randint(1, 12))) for _ in range(width)]
        body = [[rng.choice(cells) for _ in range(width)] for _ in range(rng.randint(0, 12))]
        doc = table_document(header, body, {"row_start": 1, "start_index": n})
        chunks = chunker.split(doc)
        check_table(chunks, doc, spec)
        for chunk in chunks:
            if "row_start" in chunk.metadata:
                assert 1 <= chunk.metadata["row_start"] <= chunk.metadata["row_end"] <= len(body)


def test_row_counts_that_do_not_add_up_are_checked_on_each_piece() -> None:
    counter = CharsWithJoinPenalty()
    # Rows of 4n + 2 characters lose most of a quarter token to rounding when counted alone; every 7th is too long.
    body = [[f"{i:03}", "y" * 90 if i % 7 == 3 else ""] for i in range(60)]
    doc = table_document(["k", "v"], body, {"row_start": 0})
    for spec in (ChunkSpec(70, 0), ChunkSpec(83, 8), ChunkSpec(109, 10)):
        chunks = Chunker(counter, spec).split(doc)
        check_table(chunks, doc, spec, counter)
        for a, b in pairwise(c.metadata for c in chunks):
            same_long_row = b["row_start"] == b["row_end"] == a["row_end"] and a["row_end"] % 7 == 3
            assert b["row_start"] == a["row_end"] + 1 or same_long_row


def test_a_header_too_long_for_a_chunk_falls_back_to_prose() -> None:
    doc = table_document([f"第{i}列的名称" for i in range(40)], [[str(i)] * 40 for i in range(5)], {"row_start": 1})
    header = doc.metadata[TABLE_HEADER]
    spec = ChunkSpec(64, 8)
    assert TOK.count(header) > 64
    chunks = Chunker(TOK, spec).split(doc)
    check_table(chunks, doc, spec)
    assert "row_start" not in chunks[0].metadata  # only header text: no row to name
    assert chunks[-1].metadata["row_end"] == 5


def test_a_blank_line_is_a_row_with_nothing_in_it() -> None:
    doc = table_document(["名称", "说明"], [["甲", "第一行"], ["乙", "第二行"]], {"row_start": 10})
    doc.page_content = doc.page_content.replace("\n| 乙", "\n\n| 乙")
    spec = ChunkSpec(24, 0)
    chunks = Chunker(TOK, spec).split(doc)
    check_table(chunks, doc, spec)
    assert [(c.metadata["row_start"], c.metadata["row_end"]) for c in chunks] == [(10, 10), (12, 12)]


def test_text_not_laid_out_as_a_table_is_chunked_as_text() -> None:
    text = "第一句话很短。第二句话也不长。第三句话在这里结束。"
    spec = ChunkSpec(12, 6)
    chunker = Chunker(TOK, spec)
    tagged = chunker.split(Document(text, metadata={TABLE_HEADER: "| 不是表头 |", "page": 1}))
    plain = chunker.split(Document(text, metadata={"page": 1}))
    assert [(c.page_content, c.metadata) for c in tagged] == [(c.page_content, c.metadata) for c in plain]


# -- HTML -------------------------------------------------------------------------------------------------------

PAGE = """<html><head><title>城市数据</title></head><body>
<p>下表列出各城市的人口。</p>
<table>
  <caption>2023 年</caption>
  <tr><th>城市</th><th colspan="2">人口（万）</th></tr>
  <tr><td>北京</td><td>2185</td><td>常住</td></tr>
  <tr><td rowspan="2">上海</td><td>2487</td><td>常住</td></tr>
  <tr><td>1000</td><td>户籍 <table><tr><td>内</td><td>嵌</td></tr><tr><td>套</td><td>表</td></tr></table></td></tr>
</table>
<table><tr><td>左栏导航</td><td>正文在右栏。</td></tr></table>
<p>表后的段落。</p>
</body></html>
"""


def load_page(tmp_path: Path, page: str) -> list[Document]:
    path = tmp_path / "page.html"
    path.write_text(page, encoding="utf-8")
    return list(HtmlFileLoader(path).lazy_load())


def test_an_html_page_yields_text_table_text(tmp_path: Path) -> None:
    docs = load_page(tmp_path, PAGE)
    assert [d.page_content for d in docs] == [
        "城市数据\n下表列出各城市的人口。\n2023 年",
        "| 城市 | 人口（万） | 人口（万） |\n"
        "| --- | --- | --- |\n"
        "| 北京 | 2185 | 常住 |\n"
        "| 上海 | 2487 | 常住 |\n"
        "| 上海 | 1000 | 户籍 内 嵌 套 表 |",
        "左栏导航 | 正文在右栏。\n表后的段落。",  # the layout table stays in the text
    ]
    whole = "\n".join(d.page_content for d in docs)
    assert [d.metadata["start_index"] for d in docs] == [0, whole.index("| 城市"), whole.index("左栏")]
    assert docs[1].metadata[TABLE_HEADER] == "| 城市 | 人口（万） | 人口（万） |\n| --- | --- | --- |"
    assert TABLE_HEADER not in docs[0].metadata and TABLE_HEADER not in docs[2].metadata
    chunks = Chunker(TOK, ChunkSpec(48, 8)).split(docs[1])
    assert len(chunks) > 1 and all(c.page_content.startswith(docs[1].metadata[TABLE_HEADER]) for c in chunks)


def test_html_tables_with_optional_end_tags_and_layout_tables(tmp_path: Path) -> None:
    page = (
        "<table><tr><th>名称<th>数量<tr><td>苹果<td>3<tr><td>梨<td>5</table>"  # end tags left out, as HTML allows
        "<table><tr><td>只有一行</td><td>两格</td></tr></table>"
        "<table><tr><td>只有一列</td></tr><tr><td>两行</td></tr></table>"
        '<table role="presentation"><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>'
    )
    docs = load_page(tmp_path, page)
    assert [d.page_content for d in docs] == [
        "| 名称 | 数量 |\n| --- | --- |\n| 苹果 | 3 |\n| 梨 | 5 |",
        "只有一行 | 两格\n只有一列\n两行\na | b\nc | d",
    ]


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("<table><tr><td>格</td><td>", "格\n格\n格"),  # one row: layout tables, all of them in the text
        ("<table><tr><th>格</th><th>格</th></tr><tr><td>格</td><td>", "| 格 | 格 |\n| --- | --- |\n| 格 | 格 格 格"),
    ],
    ids=["layout", "data"],
)
def test_deeply_nested_tables_are_read_in_linear_time(tmp_path: Path, level: str, expected: str) -> None:
    page = level * 3000 + "最深处" + "</td></tr></table>" * 3000
    start = time.perf_counter()
    (doc,) = load_page(tmp_path, page)
    assert time.perf_counter() - start < 10  # quadratic would take minutes
    assert doc.page_content.startswith(expected) and doc.page_content.count("格") == page.count("格")
    assert doc.page_content.endswith("最深处 |" if "th" in level else "格 | 最深处")
