"""CSV and TSV files written into tmp_path: decoding, delimiters, the table rendering and row numbers."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pytest
from langchain_core.documents import Document

import loaders.csv
from loaders.csv import CsvFileLoader
from loaders.errors import LoadError
from loaders.registry import read
from loaders.source import SourceFile
from loaders.tables import TABLE_HEADER

HEADER = ["姓名", "城市", "金额"]
PEOPLE = [["张三", "北京", "1200"], ["李四", "上海, 浦东", "980.5"], ["王五", "广州", ""]]


def csv_text(rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def load(path: Path, **kwargs: int) -> list[Document]:
    return list(CsvFileLoader(path, **kwargs).lazy_load())


def rows_of(doc: Document) -> list[str]:
    """The lines of a table Document after its two header lines."""
    return doc.page_content.split("\n")[2:]


def test_the_standard_library_csv_module_is_the_one_used() -> None:
    assert loaders.csv.csv is csv
    assert Path(csv.__file__).parent != Path(loaders.csv.__file__).parent


def test_gb18030_with_chinese_headers(tmp_path: Path) -> None:
    data = csv_text([HEADER, *PEOPLE]).encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the fallback is really needed for this file
    [doc] = load(write(tmp_path, "名单.csv", data))
    assert doc.page_content == (
        "| 姓名 | 城市 | 金额 |\n| --- | --- | --- |\n"
        "| 张三 | 北京 | 1200 |\n| 李四 | 上海, 浦东 | 980.5 |\n| 王五 | 广州 |  |"
    )
    assert doc.metadata == {
        "row_start": 2,
        "row_end": 4,
        "start_index": 0,
        TABLE_HEADER: "| 姓名 | 城市 | 金额 |\n| --- | --- | --- |",
    }


def test_utf8_bom_is_not_part_of_the_header(tmp_path: Path) -> None:
    [doc] = load(write(tmp_path, "bom.csv", codecs.BOM_UTF8 + csv_text([HEADER, *PEOPLE]).encode()))
    assert doc.page_content.startswith("| 姓名 | 城市 | 金额 |\n")


def test_tsv_splits_on_tabs_only(tmp_path: Path) -> None:
    [doc] = load(write(tmp_path, "people.tsv", csv_text([HEADER, *PEOPLE], "\t").encode()))
    assert rows_of(doc)[1] == "| 李四 | 上海, 浦东 | 980.5 |"
    assert (doc.metadata["row_start"], doc.metadata["row_end"]) == (2, 4)


def test_semicolons_in_the_first_line_make_the_delimiter(tmp_path: Path) -> None:
    [doc] = load(write(tmp_path, "eu.csv", b"Name;Preis\nKaffee;2,50\nTee;1,80\n"))
    assert rows_of(doc) == ["| Kaffee | 2,50 |", "| Tee | 1,80 |"]


def test_blocks_repeat_the_header_and_number_the_rows(tmp_path: Path) -> None:
    rows = [["id", "名称"], *([str(i), f"商品{i}"] for i in range(1, 1201))]
    docs = load(write(tmp_path, "items.csv", csv_text(rows).encode()))
    assert [(d.metadata["row_start"], d.metadata["row_end"]) for d in docs] == [(2, 501), (502, 1001), (1002, 1201)]
    for doc in docs:
        assert doc.page_content.startswith("| id | 名称 |\n| --- | --- |\n")
        first = doc.metadata["row_start"]
        assert rows_of(doc)[0] == f"| {first - 1} | 商品{first - 1} |"  # row n holds item n - 1
    # start_index: where each block starts in the blocks' texts joined by newlines
    assert [d.metadata["start_index"] for d in docs] == [
        0,
        len(docs[0].page_content) + 1,
        sum(len(d.page_content) + 1 for d in docs[:2]),
    ]


def test_blank_lines_are_rows_short_gaps_stay_long_gaps_split(tmp_path: Path) -> None:
    text = "\n\nid,name\n1,a\n\n2,b\n\n\n\n3,c\n"  # header on row 3; one blank row (5), then three (7-9)
    docs = load(write(tmp_path, "gaps.csv", text.encode()))
    assert [(d.metadata["row_start"], d.metadata["row_end"]) for d in docs] == [(4, 6), (10, 10)]
    assert rows_of(docs[0]) == ["| 1 | a |", "|  |  |", "| 2 | b |"]
    assert rows_of(docs[1]) == ["| 3 | c |"]


def test_a_quoted_field_may_span_lines(tmp_path: Path) -> None:
    text = 'id,note\n1,"first line\nsecond line"\n2,plain\n'
    [doc] = load(write(tmp_path, "multi.csv", text.encode()))
    assert rows_of(doc) == ["| 1 | first line second line |", "| 2 | plain |"]
    assert (doc.metadata["row_start"], doc.metadata["row_end"]) == (2, 3)  # records, not lines


def test_rows_wider_than_the_header_widen_the_table(tmp_path: Path) -> None:
    [doc] = load(write(tmp_path, "ragged.csv", b"a,b\n1\n1,2,3\n"))
    assert doc.page_content == "| a | b |  |\n| --- | --- | --- |\n| 1 |  |  |\n| 1 | 2 | 3 |"


def test_a_header_alone_is_one_document(tmp_path: Path) -> None:
    [doc] = load(write(tmp_path, "only.csv", "名称,数量\n".encode()))
    assert doc.page_content == "| 名称 | 数量 |\n| --- | --- |"
    assert (doc.metadata["row_start"], doc.metadata["row_end"]) == (1, 1)


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n", codecs.BOM_UTF8, b" , ,\n,\n"])
def test_empty_file(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(LoadError, match=r"^empty file$"):
        load(write(tmp_path, "empty.csv", data))


def test_undecodable_file_gets_the_text_loaders_error(tmp_path: Path) -> None:
    path = write(tmp_path, "latin1.csv", "nom,ville\ncafé,Besançon\n".encode("latin-1"))
    with pytest.raises(LoadError, match=r"^not valid UTF-8 or GB18030 text$"):
        load(path)


def test_bytes_undecodable_past_the_first_block_say_where(tmp_path: Path) -> None:
    good = b"id,text\n" + b"".join(b"%d,%s\n" % (i, "检索".encode()) for i in range(1, 200_001))
    assert len(good) > 1 << 20  # the encoding is chosen from the first MiB
    with pytest.raises(LoadError, match=rf"^not valid UTF-8 text \(undecodable bytes near byte {len(good) + 2}\)$"):
        load(write(tmp_path, "late.csv", good + b"1,\xff\n"))


def test_an_unterminated_quote_is_malformed(tmp_path: Path) -> None:
    data = b'id,note\n1,"opened\n' + b"2,never closed\n" * 20_000
    with pytest.raises(LoadError, match=r"^malformed CSV after row 1: field larger than field limit \(131072\)$"):
        load(write(tmp_path, "quote.csv", data))


def test_a_line_without_end_is_not_held_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loaders.csv, "MAX_LINE", 1 << 20)
    with pytest.raises(LoadError, match=r"^malformed CSV: a line longer than 1 MiB \(near byte 2097152\)$"):
        load(write(tmp_path, "dump.csv", b"a,b\n" + b"x," * (3 << 19)))


def test_read_adds_the_common_metadata(tmp_path: Path) -> None:
    path = write(tmp_path, "people.tsv", csv_text([HEADER, *PEOPLE], "\t").encode())
    [doc] = read(SourceFile(root=tmp_path, path=path))
    assert doc.metadata["file_type"] == "csv"
    assert doc.metadata["source"] == "people.tsv"
    assert {"row_start", "row_end", "start_index", "file_hash", TABLE_HEADER} < set(doc.metadata)
    assert "sheet" not in doc.metadata
