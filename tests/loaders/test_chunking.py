"""The chunker with the real Qwen3 tokenizer: the token cap on pathological input, boundaries, offsets, overlap."""

from __future__ import annotations

import json
import random
import re
import string
import time
from collections.abc import Iterator, Sequence
from itertools import pairwise
from pathlib import Path

import pytest
from langchain_core.documents import Document
from pypdf import PdfReader

from loaders.chunking import Chunker, ChunkSpec
from loaders.tokens import TokenCounter, qwen_tokenizer

TOK = qwen_tokenizer()
SENTENCE_END = re.compile(r"[。！？；][”」』）]*$")


def check(chunks: list[Document], source: str, spec: ChunkSpec, base: int = 0, counter: TokenCounter = TOK) -> None:
    """The guarantees every chunking must keep."""
    spans = []
    for chunk in chunks:
        text, start = chunk.page_content, chunk.metadata["start_index"] - base
        assert source[start : start + len(text)] == text, "start_index must locate the chunk in the source"
        assert text and text.strip() == text, "no empty chunks, no surrounding whitespace"
        assert chunk.metadata["tokens"] == counter.count(text) + counter.special_tokens <= spec.chunk_tokens
        spans.append((start, start + len(text)))
    assert [s for s, _ in spans] == sorted({s for s, _ in spans}), "chunks in order, each starting further on"
    uncovered, pos = [], 0
    for start, end in spans:
        uncovered.append(source[pos:start])
        pos = max(pos, end)
    uncovered.append(source[pos:])
    assert not "".join(uncovered).strip(), "every non-whitespace character is in some chunk"


def paragraphs(shared: Path, name: str) -> list[str]:
    with open(shared / "eval" / name / "corpus.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


@pytest.fixture(scope="module")
def zh(shared: Path) -> list[str]:
    return paragraphs(shared, "cmrc2018")


@pytest.fixture(scope="module")
def en(shared: Path) -> list[str]:
    return paragraphs(shared, "scifact")


@pytest.fixture(scope="module")
def mixed(zh: list[str], en: list[str]) -> str:
    """Just over 200,000 tokens of Chinese and English paragraphs, alternating."""
    texts: list[str] = []
    tokens = 0
    for pair in zip(zh, en, strict=False):
        texts += pair
        tokens += sum(TOK.count_many(pair))
        if tokens > 201_000:
            break
    return "\n\n".join(texts)


# -- the cap --------------------------------------------------------------------------------------------------


def _pathological(zh: list[str]) -> dict[str, str]:
    rng = random.Random(3)
    hanzi = re.sub(r"[^\u4e00-\u9fff]", "", "".join(zh))
    return {
        "300k chars, no separator": "".join(rng.choices(string.ascii_letters + string.digits, k=300_000)),
        "giant CJK paragraph, no punctuation": hanzi[:200_000],
        "1 MB Chinese, no newlines": "".join(zh).replace("\n", "").encode()[:1_000_000].decode(errors="ignore"),
        "emoji": "".join(rng.choices(["😀", "👍🏽", "🏳️‍🌈", "🇨🇳", "👨‍👩‍👧‍👦", "🦩", "🫠"], k=20_000)),
        "whitespace runs": ("word " + " " * 3000 + "\n" * 500 + "\t" * 200) * 20,
        "added tokens, not NFC": ("<|endoftext|><think>e\u0301\u0338" * 2000) + "x" * 5000,
        "mixed scripts": "".join(
            rng.choices(["中文", "English ", "١٢٣", "😀", "Привет", "。", ", ", "\n", "e\u0301"], k=30_000)
        ),
    }


@pytest.mark.slow
@pytest.mark.parametrize("spec", [ChunkSpec(512, 64), ChunkSpec(16, 4)], ids=["512-64", "16-4"])
def test_pathological_inputs_keep_the_cap(zh: list[str], spec: ChunkSpec) -> None:
    chunker = Chunker(TOK, spec)
    for name, text in _pathological(zh).items():
        if spec.chunk_tokens == 16:
            text = text[:20_000]  # tiny chunks: same code paths, fewer of them
        chunks = chunker.split(Document(text))
        check(chunks, text, spec)
        assert chunks, name


def test_chunks_of_the_hard_cap_on_100k_tokens(mixed: str) -> None:
    text = mixed[: len(mixed) * 52 // 100]
    assert 100_000 < TOK.count(text) < 110_000
    spec = ChunkSpec(chunk_tokens=32761, overlap_tokens=64)
    chunks = Chunker(TOK, spec).split(Document(text))
    check(chunks, text, spec)
    assert len(chunks) == 4 and max(c.metadata["tokens"] for c in chunks) > 32_000


def test_200k_tokens_chunk_in_seconds(mixed: str) -> None:
    assert TOK.count(mixed) > 200_000
    spec = ChunkSpec(512, 64)
    start = time.perf_counter()
    chunks = Chunker(TOK, spec).split(Document(mixed))
    elapsed = time.perf_counter() - start
    check(chunks, mixed, spec)
    assert elapsed < 15, f"{elapsed:.1f} s: chunking has gone quadratic"  # 0.4 s on 2 idle cores


class CharsWithJoinPenalty:
    """Counts characters plus one per four, so the sum over pieces (or table rows) underestimates their join, as
    BPE can."""

    name = "chars"
    special_tokens = 1

    def count(self, text: str) -> int:
        return len(text) + len(text) // 4

    def count_many(self, texts: Sequence[str]) -> list[int]:
        return [self.count(t) for t in texts]

    def split(self, text: str, max_tokens: int) -> list[str]:
        size = max(n for n in range(1, max_tokens + 1) if self.count("x" * n) <= max_tokens)
        return [text[i : i + size] for i in range(0, len(text), size)]


def test_counts_that_do_not_add_up_are_checked_on_the_final_chunk() -> None:
    counter = CharsWithJoinPenalty()
    text = "一二，" * 200  # clauses of 3 tokens; three of them fit a budget of 10 by sum, but count 11 joined
    for spec in (ChunkSpec(11, 0), ChunkSpec(11, 4), ChunkSpec(40, 10)):
        check(Chunker(counter, spec).split(Document(text)), text, spec, counter=counter)


# -- boundaries -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlap", [0, 32])
def test_chinese_splits_after_sentence_ends(zh: list[str], overlap: int) -> None:
    sentences = [s for p in zh[:200] for s in re.findall(r"[^。！？；]+[。！？；][”」』）]*", p.replace("\n", ""))]
    # Every sentence fits a chunk (some only without overlap), and none has an English sentence inside.
    text = "".join(s for s in sentences if TOK.count(s) < 125 and not re.search(r"[.!?;．]", s))
    spec = ChunkSpec(128, overlap)
    chunks = Chunker(TOK, spec).split(Document(text))
    check(chunks, text, spec)
    for chunk in chunks:
        start = chunk.metadata["start_index"]
        assert SENTENCE_END.search(chunk.page_content), chunk.page_content[-20:]
        if not overlap:  # (an overlap may start at a comma)
            assert start == 0 or SENTENCE_END.search(text[:start].rstrip())


def test_the_overlap_gives_way_to_a_sentence_that_fits_only_alone(zh: list[str]) -> None:
    hanzi = re.sub(r"[^\u4e00-\u9fff]", "", "".join(zh))
    sentences = [run + "。" for run in TOK.split(hanzi[:6000], 110)[:-1]]  # about 110 tokens each, no commas
    assert all(100 < TOK.count(s) < 127 for s in sentences)
    text = "".join(sentences)
    spec = ChunkSpec(128, 32)
    chunks = Chunker(TOK, spec).split(Document(text))
    check(chunks, text, spec)
    assert [c.page_content for c in chunks] == sentences


def test_a_long_chinese_sentence_splits_at_commas() -> None:
    text = "，".join(f"这是第{i}个分句里面有一些文字" for i in range(300)) + "。"
    spec = ChunkSpec(64, 0)
    chunks = Chunker(TOK, spec).split(Document(text))
    check(chunks, text, spec)
    assert len(chunks) > 10
    assert all(c.page_content[-1] in "，。" for c in chunks)


def test_english_chunks_end_at_paragraphs_when_paragraphs_fit(en: list[str]) -> None:
    text = "\n\n".join(p for p in en[:300] if 50 < TOK.count(p) < 200)
    spec = ChunkSpec(512, 0)
    chunks = Chunker(TOK, spec).split(Document(text))
    check(chunks, text, spec)
    ends = [c.metadata["start_index"] + len(c.page_content) for c in chunks]
    assert all(text[end : end + 2] in ("\n\n", "") for end in ends)
    assert sum(c.metadata["tokens"] for c in chunks) / len(chunks) > 300  # yet chunks are well filled


def test_a_chunk_ends_at_a_paragraph_in_the_back_half_rather_than_fill_up(en: list[str]) -> None:
    sentences = [s for p in en[:200] for s in re.findall(r"[^.]+\. ", p + " ") if 20 < TOK.count(s) < 60]
    paragraphs, current = [], ""
    for sentence in sentences:  # paragraphs of 800 to 860 tokens: two chunks of 512 each, the second >= half full
        current += sentence
        if TOK.count(current) > 800:
            paragraphs.append(current.strip())
            current = ""
    text = "\n\n".join(paragraphs[:8])
    spec = ChunkSpec(512, 0)
    chunks = Chunker(TOK, spec).split(Document(text))
    check(chunks, text, spec)
    assert len(chunks) == 16 and not any("\n\n" in c.page_content for c in chunks)


def test_english_sentences_are_cut_after_the_full_stop(en: list[str]) -> None:
    text = " ".join(en[:40]).replace("\n", " ")
    spec = ChunkSpec(64, 0)
    chunks = Chunker(TOK, spec).split(Document(text))
    check(chunks, text, spec)
    at_sentence = sum(c.page_content[-1] in ".!?" for c in chunks)
    assert at_sentence / len(chunks) > 0.5  # the rest are sentences longer than a chunk, cut at clauses or words


def _python_module(functions: int) -> str:
    body = '    """Docstring of {name}."""\n    total = 0\n\n    for i in range({n}):\n        total += i * {n}\n\n'
    parts = ["import os\nimport sys\n\n"]
    for n in range(functions):
        if n % 3 == 0:
            parts.append(f"\nclass Thing{n}:\n    value = {n}\n")
        parts.append(f"\ndef function_{n}(x):\n" + body.format(name=f"function_{n}", n=n) + "    return total\n\n")
    return "".join(parts)


def test_python_splits_at_def_and_class() -> None:
    source = _python_module(40)
    spec = ChunkSpec(100, 0)
    code_chunks = Chunker(TOK, spec).split(Document(source, metadata={"language": "python"}))
    check(code_chunks, source, spec)
    assert len(code_chunks) > 5
    assert all(c.page_content.startswith(("def ", "class ", "import ")) for c in code_chunks)
    # Without the language, blank lines inside functions are paragraph breaks like any other.
    prose_chunks = Chunker(TOK, spec).split(Document(source))
    assert not all(c.page_content.startswith(("def ", "class ", "import ")) for c in prose_chunks)


def test_go_splits_at_func() -> None:
    source = "package main\n\n" + "".join(
        f"func f{n}(a int) int {{\n\tb := a * {n}\n\n\treturn b + {n} // done\n}}\n\n" for n in range(60)
    )
    spec = ChunkSpec(64, 0)
    chunks = Chunker(TOK, spec).split(Document(source, metadata={"language": "go"}))
    check(chunks, source, spec)
    assert all(c.page_content.startswith(("func ", "package ")) for c in chunks)


@pytest.mark.parametrize("language", ["perl", "klingon", None, ""])
def test_languages_without_code_separators_fall_back_to_prose(language: str | None, en: list[str]) -> None:
    text = "\n\n".join(en[:20])
    chunker = Chunker(TOK, ChunkSpec(128, 16))
    tagged = chunker.split(Document(text, metadata={"language": language}))
    assert [c.page_content for c in tagged] == [c.page_content for c in chunker.split(Document(text))]


# -- overlap, offsets, metadata --------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["zh", "en"])
def test_overlap_is_a_boundary_cut_tail_of_the_previous_chunk(which: str, zh: list[str], en: list[str]) -> None:
    text = "\n\n".join((zh if which == "zh" else en)[:60])
    spec = ChunkSpec(128, 32)
    chunks = Chunker(TOK, spec).split(Document(text))
    check(chunks, text, spec)
    overlaps = []
    for a, b in pairwise(chunks):
        a_end, b_start = a.metadata["start_index"] + len(a.page_content), b.metadata["start_index"]
        assert a.metadata["start_index"] < b_start, "a chunk is never repeated whole in the next"
        if b_start >= a_end:  # only a sentence too long to share a chunk with the overlap goes without
            assert b.metadata["tokens"] > spec.chunk_tokens - spec.overlap_tokens
            overlaps.append(0)
            continue
        overlap = text[b_start:a_end]
        overlaps.append(TOK.count(overlap))
        # It starts at a boundary, or (the fallback) it is the end of a clause too long to overlap whole.
        at_boundary = re.search(r"[\s。！？；，、：”」』）》.!?,;:)\]\"']$", text[:b_start])
        assert at_boundary or not re.search(r"[\s。！？；，、：]|[.!?,;:]\s", overlap[:-1]), overlap
    assert max(overlaps) <= spec.overlap_tokens + 2
    assert overlaps.count(0) < len(overlaps) / 20
    assert sum(overlaps) / len(overlaps) > spec.overlap_tokens * 2 / 3


@pytest.mark.parametrize("kind", ["letters", "hanzi"])
def test_runs_without_separators_overlap_too(kind: str, zh: list[str]) -> None:
    rng = random.Random(5)
    if kind == "letters":
        text = "".join(rng.choices(string.ascii_letters, k=30_000))
    else:
        text = re.sub(r"[^\u4e00-\u9fff]", "", "".join(zh))[:30_000]
    spec = ChunkSpec(128, 32)
    chunks = Chunker(TOK, spec).split(Document(text))
    check(chunks, text, spec)
    for a, b in pairwise(chunks):
        a_end, b_start = a.metadata["start_index"] + len(a.page_content), b.metadata["start_index"]
        assert 16 <= TOK.count(text[b_start:a_end]) <= 32
    assert sum(c.metadata["tokens"] for c in chunks[:-1]) / (len(chunks) - 1) > 120  # and chunks are full


def test_no_overlap_means_chunks_tile_the_text(zh: list[str]) -> None:
    text = "\n".join(zh[:50])
    spec = ChunkSpec(128, 0)
    chunks = Chunker(TOK, spec).split(Document(text))
    check(chunks, text, spec)
    for a, b in pairwise(chunks):
        assert b.metadata["start_index"] >= a.metadata["start_index"] + len(a.page_content)


def test_metadata_is_copied_and_start_index_offsets_the_page(zh: list[str]) -> None:
    metadata = {"source": "book.pdf", "page": 3, "start_index": 1000}
    doc = Document("\n\n" + zh[0] + "\n\n" + zh[1] + "   ", metadata=metadata)
    spec = ChunkSpec(64, 8)
    chunks = Chunker(TOK, spec).split(doc)
    check(chunks, doc.page_content, spec, base=1000)
    assert chunks[0].metadata["start_index"] == 1002  # the leading blank lines are trimmed
    assert all(c.metadata["source"] == "book.pdf" and c.metadata["page"] == 3 for c in chunks)
    assert doc.metadata == {"source": "book.pdf", "page": 3, "start_index": 1000}  # the input is left alone


def test_real_pdf_pages(pdfs: Path) -> None:
    spec = ChunkSpec(256, 32)
    chunker = Chunker(TOK, spec)
    for name in (
        "zh_elegantpaper-cn.pdf",
        "en_paper_naacl2018-N18-3011.pdf",
        "en_gov_table_nics-background-checks-2015-11.pdf",
    ):
        for number, page in enumerate(PdfReader(pdfs / name).pages, 1):
            text = page.extract_text()
            chunks = chunker.split(Document(text, metadata={"source": name, "page": number}))
            check(chunks, text, spec)
            assert all(c.metadata["page"] == number for c in chunks)


def test_blank_documents_give_no_chunks() -> None:
    chunker = Chunker(TOK, ChunkSpec(16, 4))
    assert chunker.split(Document("")) == []
    assert chunker.split(Document(" \n\n\t\u3000 " * 1000)) == []
    text = "a" + " " * 50_000 + "b"
    assert [c.page_content for c in chunker.split(Document(text))] == ["a", "b"]


def test_same_input_same_chunks(mixed: str) -> None:
    text = mixed[:100_000]
    first = Chunker(TOK, ChunkSpec(200, 40)).split(Document(text, metadata={"source": "s"}))
    again = Chunker(TOK, ChunkSpec(200, 40)).split(Document(text, metadata={"source": "s"}))
    assert [(c.page_content, c.metadata) for c in first] == [(c.page_content, c.metadata) for c in again]


def test_split_many_is_lazy(zh: list[str]) -> None:
    taken: list[int] = []

    def docs() -> Iterator[Document]:
        for i, text in enumerate(zh[:5]):
            taken.append(i)
            yield Document(text, metadata={"i": i})

    chunks = Chunker(TOK, ChunkSpec(64, 8)).split_many(docs())
    assert next(chunks).metadata["i"] == 0 and taken == [0]
    assert {c.metadata["i"] for c in chunks} == {0, 1, 2, 3, 4}


# -- the spec ---------------------------------------------------------------------------------------------------


def test_spec_is_validated_and_clamped() -> None:
    assert ChunkSpec(chunk_tokens=40_000).chunk_tokens == 32761
    assert ChunkSpec(chunk_tokens=600, overlap_tokens=64, max_tokens=512).chunk_tokens == 512
    with pytest.raises(ValueError, match=r"overlap_tokens must be .* smaller than chunk_tokens"):
        ChunkSpec(chunk_tokens=64, overlap_tokens=64)
    with pytest.raises(ValueError, match="overlap_tokens"):
        ChunkSpec(chunk_tokens=600, overlap_tokens=512, max_tokens=512)  # the clamped size counts
    with pytest.raises(ValueError, match="positive"):
        ChunkSpec(chunk_tokens=0)
    with pytest.raises(ValueError, match="no room for text"):
        Chunker(TOK, ChunkSpec(chunk_tokens=1, overlap_tokens=0))
