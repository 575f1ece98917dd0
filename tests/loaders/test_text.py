"""Plain-text decoding and block streaming, on files written into tmp_path."""

from __future__ import annotations

import codecs
import tracemalloc
from pathlib import Path

import pytest

from loaders.errors import LoadError
from loaders.text import TextFileLoader, decode_bytes

ENGLISH_CHINESE = "Retrieval-augmented generation.\n检索增强生成把文档切块、嵌入并检索。\n第二行。\n"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def load(path: Path, **kwargs: int) -> list[tuple[int, str]]:
    return [(doc.metadata["start_index"], doc.page_content) for doc in TextFileLoader(path, **kwargs).lazy_load()]


def test_utf8_english_and_chinese_is_one_document(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", ENGLISH_CHINESE.encode())
    assert load(path) == [(0, ENGLISH_CHINESE)]


def test_utf8_bom_is_not_part_of_the_text(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.md", codecs.BOM_UTF8 + ENGLISH_CHINESE.encode())
    assert load(path) == [(0, ENGLISH_CHINESE)]


def test_gb18030_chinese_is_decoded(tmp_path: Path) -> None:
    data = ENGLISH_CHINESE.encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the fallback is really needed for this file
    assert load(write(tmp_path, "windows.txt", data)) == [(0, ENGLISH_CHINESE)]


def test_utf16_with_bom_is_decoded_despite_its_nul_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, "notepad.txt", codecs.BOM_UTF16_LE + ENGLISH_CHINESE.encode("utf-16-le"))
    assert load(path) == [(0, ENGLISH_CHINESE)]


def test_crlf_line_ends_are_kept(tmp_path: Path) -> None:
    assert load(write(tmp_path, "dos.txt", b"one\r\ntwo\r\n")) == [(0, "one\r\ntwo\r\n")]


def test_neither_utf8_nor_gb18030_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "latin1.txt", "café au lait, naïve\n".encode("latin-1"))
    with pytest.raises(LoadError, match=r"^not valid UTF-8 or GB18030 text$"):
        load(path)


@pytest.mark.parametrize("data", [b"PK\x03\x04\x00\x00binary", b"ok text " * 900 + b"\x00"])
def test_nul_bytes_in_the_first_8_kib_mean_binary(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(LoadError, match=r"^binary file with a text extension$"):
        load(write(tmp_path, "x.txt", data))


@pytest.mark.parametrize("data", [b"", b" \n\t\r\n   \n", codecs.BOM_UTF8, codecs.BOM_UTF8 + b"\n\n"])
def test_empty_or_whitespace_only_file(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(LoadError, match=r"^empty file$"):
        load(write(tmp_path, "empty.txt", data))


def test_blocks_are_cut_after_newlines_with_exact_offsets(tmp_path: Path) -> None:
    # 3-byte UTF-8 characters and a 64-byte block: block edges fall inside characters.
    text = "".join(f"第{i}行：检索增强生成 line {i}\n" for i in range(200))
    path = write(tmp_path, "blocks.md", codecs.BOM_UTF8 + text.encode())
    blocks = load(path, block_size=64)
    assert len(blocks) > 50
    assert "".join(content for _, content in blocks) == text
    for start, content in blocks:
        assert text[start : start + len(content)] == content
        assert content.endswith("\n")


def test_gb18030_blocks_decode_across_block_edges(tmp_path: Path) -> None:
    text = "".join(f"第{i}段，中文文本在Windows上保存。\n" for i in range(300))
    blocks = load(write(tmp_path, "gb.txt", text.encode("gb18030")), block_size=100)
    assert "".join(content for _, content in blocks) == text


def test_a_line_longer_than_a_block_is_cut_at_a_character_boundary(tmp_path: Path) -> None:
    text = "嵌" * 1000 + "\nend\n"
    blocks = load(write(tmp_path, "long.txt", text.encode()), block_size=100)
    assert "".join(content for _, content in blocks) == text
    assert all(text[start : start + len(content)] == content for start, content in blocks)


def test_whitespace_only_blocks_are_skipped_but_offsets_stay_exact(tmp_path: Path) -> None:
    text = "head\n" + "\n" * 500 + "tail\n"
    blocks = load(write(tmp_path, "gaps.txt", text.encode()), block_size=32)
    assert [content.strip() for _, content in blocks] == ["head", "tail"]
    assert all(text[start : start + len(content)] == content for start, content in blocks)


def test_an_undecodable_later_block_is_an_error_after_the_good_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "mixed.txt", b"plain ascii line\n" * 10 + "café\n".encode("latin-1"))
    loader = TextFileLoader(path, block_size=64)
    docs = loader.lazy_load()
    assert next(docs).page_content.startswith("plain ascii line")
    with pytest.raises(LoadError, match=r"^not valid UTF-8 text \(undecodable bytes near byte 17\d\)$"):
        list(docs)


def test_a_multibyte_character_cut_off_at_the_end_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "cut.txt", "完整的一行\n".encode() + "截".encode()[:2])
    with pytest.raises(LoadError, match=r"^not valid UTF-8 text"):
        load(path, block_size=8)


def test_a_50_mb_file_is_streamed_with_bounded_memory(tmp_path: Path) -> None:
    line = "Streaming keeps memory bounded. 流式读取让内存保持有界。\n".encode()
    block = line * ((1 << 20) // len(line))
    path = tmp_path / "big.txt"
    with path.open("wb") as out:
        for _ in range(50):
            out.write(block)
    size = path.stat().st_size
    assert size >= 50_000_000

    tracemalloc.start()
    try:
        count = chars = 0
        for doc in TextFileLoader(path).lazy_load():
            count += 1
            chars += len(doc.page_content)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count >= 50
    assert chars == len(block.decode()) * 50
    assert peak < 16 << 20, f"peak {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB file"


def test_decode_bytes_prefers_a_declared_codec_that_fits() -> None:
    data = "café au lait".encode("cp1252")
    assert decode_bytes(data, declared="cp1252") == "café au lait"
    with pytest.raises(LoadError):
        decode_bytes(data)  # without the declaration: neither UTF-8 nor GB18030
    assert decode_bytes("检索".encode(), declared="no-such-codec") == "检索"
