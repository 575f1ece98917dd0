"""The tiktoken-run Qwen3 tokenizer against the reference ``tokenizers`` library: same ids, same counts, EOS."""

from __future__ import annotations

import json
import random
import re
import unicodedata
from pathlib import Path

import pytest
import tokenizers
from pypdf import PdfReader
from tokenizers.processors import TemplateProcessing

from loaders.tokens import QwenTokenizer, qwen_tokenizer

# Strings where the engines could part ways: pre-tokeniser regex flavour (\s, \p{L}, \p{N}, contractions),
# NFC normalisation, added tokens (matched before normalisation), byte-level BPE of multi-byte characters.
TRICKY = [
    # whitespace of every kind the two regex engines might classify differently
    *[" ", "  ", "\t", "\n", "\r\n", "\r", "\x0b", "\x0c", "\x85", "\xa0", "\u1680", "\u2000", "\u2028"],
    *["\u2029", "\u3000", "\u200b", "\u180e", "\ufeff", "\x00", "\x1f"],
    # letters, marks, digits, contractions; decomposed forms that NFC composes
    *["a", "Z", "é", "e\u0301", "A\u030a", "\u0301", "\u0338", "\u0300\u0301", "\u0344", "\u0958", "\u2126"],
    *["\u0898\u0899", "\u0eb9\u0eba", "\u1df6\u1df7", "\U00011839\U0001183a"],  # Unicode 10+ marks, reversed
    *["\ufb2c", "ǅ", "ß", "ǰ", "ΐ", "ﬁ", "Å", "Ω", "K", "한", "ᄀ", "ᅡ", "각", "가\u11a8", "क", "\u093f", "ไ", "ع"],
    *["\u064b", "'s", "'S", "'ll", "'D", "’s", "hello", "World", "中", "文", "１", "٣", "5", "42", "3.14"],
    # punctuation, symbols, emoji
    *["。", "，", "！", "？", "；", ">", "<", "=", "-", "_", "#", "//", "{", "}", "(", ")", "```", "...", "$", "€"],
    *["😀", "👍🏽", "🏳️\u200d🌈", "<<", "<|", "|", "|>", "<|endoftext"],
    # added tokens
    *["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>", "<|fim_prefix|>"],
]
SYNTHETIC = [
    "",
    "Hello world",
    "def f(x):\r\n    return {'a': [1, 2, 3]}  # comment\r\n\r\n\tpass\n",
    'if (a<b && c>=d) { printf("%d\\n", a); }',
    "1234567890 3.14159 1,000,000 0x7fffffff 1e-9 ١٢٣٤",
    " " * 1000 + "x" + "\n" * 500 + "\t" * 100,
    "😀👍🏽🏳️‍🌈🇨🇳👨‍👩‍👧‍👦" * 50,
    "机器学习是人工智能的一个分支。It learns from data！深度学习（Deep Learning）呢？" * 20,
    "a" * 20_000,
    "中" * 20_000,
    "<|endoftext|>" * 3 + "<think>\u0338 <|im_start|≯",  # a combining mark after an added token
    "Ὀδυσσεύς ΑΒΓ Привет мир שלום עולם مرحبا नमस्ते สวัสดี こんにちは 안녕하세요",
]


@pytest.fixture(scope="module")
def reference() -> tokenizers.Tokenizer:
    return tokenizers.Tokenizer.from_file(qwen_tokenizer().path)


@pytest.fixture(scope="module")
def corpus(shared: Path, pdfs: Path) -> list[str]:
    """Real Chinese, English and German text: CMRC2018 and SciFact (documents and queries) and every sample PDF."""
    texts: list[str] = []
    for name in ("cmrc2018", "scifact"):
        for part in ("corpus", "queries"):
            with open(shared / "eval" / name / f"{part}.jsonl", encoding="utf-8") as f:
                texts += [json.loads(line)["text"] for line in f]
    for path in sorted(pdfs.glob("*.pdf")):
        reader = PdfReader(path)
        if reader.is_encrypted:
            reader.decrypt("openpassword")
        texts += [page.extract_text() for page in reader.pages]
    return texts


def _fuzz(n: int, seed: int) -> list[str]:
    """Random strings of TRICKY items, combining marks and characters with canonical decompositions (the ones
    NFC reorders, composes or decomposes)."""
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    marks = [c for c in chars if unicodedata.combining(c)]
    decomposable = [c for c in chars if unicodedata.decomposition(c)[:1] not in ("", "<")]
    rng = random.Random(seed)
    return [
        "".join(rng.choice(rng.choice((TRICKY, marks, decomposable))) for _ in range(rng.randint(1, 16)))
        for _ in range(n)
    ]


def _every_code_point() -> list[str]:
    """Each assigned code point (and every 97th unassigned or private-use one) in runs of 128 neighbours, glued
    together and space-separated."""
    points = [
        chr(c)
        for c in range(0x110000)
        if unicodedata.category(chr(c)) not in ("Cn", "Co", "Cs") or (c % 97 == 0 and not 0xD800 <= c <= 0xDFFF)
    ]
    runs = [points[i : i + 128] for i in range(0, len(points), 128)]
    return ["".join(run) for run in runs] + [" ".join(run) for run in runs]


def _assert_same_ids(texts: list[str], reference: tokenizers.Tokenizer) -> None:
    tok = qwen_tokenizer()
    expected = [e.ids for e in reference.encode_batch(texts, add_special_tokens=False)]
    mismatches = [t for t, ids in zip(texts, expected, strict=True) if tok.encode(t) != ids]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} differ, e.g. {mismatches[:3]!r}"


@pytest.mark.slow
def test_real_corpus_ids_equal_reference(corpus: list[str], reference: tokenizers.Tokenizer) -> None:
    assert len(corpus) > 10_000 and sum(map(len, corpus)) > 7_000_000  # a few thousand docs, all of the PDFs
    assert len(re.findall("[\u4e00-\u9fff]", "".join(corpus))) > 500_000  # a good deal of it is Chinese
    _assert_same_ids(corpus, reference)


@pytest.mark.slow
def test_synthetic_and_fuzzed_ids_equal_reference(reference: tokenizers.Tokenizer) -> None:
    _assert_same_ids(SYNTHETIC + TRICKY + _fuzz(50_000, seed=7), reference)


@pytest.mark.slow
def test_every_code_point_ids_equal_reference(reference: tokenizers.Tokenizer) -> None:
    _assert_same_ids(_every_code_point(), reference)


def test_ranks_are_merge_order() -> None:
    """tiktoken merges the pair whose *result* has the lowest rank, tokenizers the pair listed first in merges;
    the two agree because Qwen's merge k produces token 256 + k."""
    with open(qwen_tokenizer().path, encoding="utf-8") as f:
        model = json.load(f)["model"]
    vocab, merges = model["vocab"], model["merges"]
    assert sorted(vocab.values()) == list(range(len(vocab)))
    assert all(vocab[a + b] == 256 + k for k, (a, b) in enumerate(merges))


def test_eos_is_counted_as_the_server_does(reference: tokenizers.Tokenizer) -> None:
    """Qwen3-Embedding's tokenizer appends <|endoftext|> (151643) to every input: count + special_tokens."""
    tok = qwen_tokenizer()
    assert tok.special_tokens == 1 and tok.name == "qwen3"
    assert tok.eos_token_id == 151643 and tok.encode("<|endoftext|>") == [151643]
    with_eos = tokenizers.Tokenizer.from_str(reference.to_str())
    with_eos.post_processor = TemplateProcessing(
        single="$A <|endoftext|>", pair="$A <|endoftext|> $B <|endoftext|>", special_tokens=[("<|endoftext|>", 151643)]
    )
    for text in SYNTHETIC[1:]:
        ids = with_eos.encode(text).ids  # add_special_tokens=True, as the server tokenises
        assert ids[-1] == 151643
        assert len(ids) == tok.count(text) + tok.special_tokens


def test_count_many_and_normalisation() -> None:
    tok = qwen_tokenizer()
    texts = ["", "é", "e\u0301", "Hello world", "你好，世界！"]
    assert tok.count_many(texts) == [tok.count(t) for t in texts] == [0, 1, 1, 2, 4]
    assert tok.encode("e\u0301") == tok.encode("é")  # NFC, as tokenizer.json's normalizer does
    assert qwen_tokenizer() is tok


@pytest.mark.parametrize(
    "text",
    [
        "Plain English text, split wherever it must be. " * 300,  # fast path: one encoding, token offsets
        "中文没有空格也没有标点符号可以切分" * 500,
        "a" * 300_000,  # one 300,000-character pre-token
        "😀👍🏽🏳️‍🌈" * 300,  # emoji: several tokens per character, cuts must not land inside a character
        "e\u0301" * 3000 + "x",  # not NFC: counted piece by piece
        "abc<|endoftext|>def<think>" * 200,  # added tokens: counted piece by piece
        "lone \ud800 surrogate " * 100,
    ],
)
@pytest.mark.parametrize("max_tokens", [7, 512])
def test_split_pieces_fit_and_join_back(text: str, max_tokens: int) -> None:
    tok = qwen_tokenizer()
    pieces = tok.split(text, max_tokens)
    assert "".join(pieces) == text and all(pieces)
    counts = tok.count_many(pieces)
    assert max(counts) <= max_tokens
    assert min(counts[:-1], default=max_tokens) >= max_tokens // 2  # pieces are full, not needlessly many


def test_split_with_characters_of_several_tokens() -> None:
    tok = qwen_tokenizer()
    rng = random.Random(1)
    for _ in range(2000):  # 龘 is 2 tokens, 𠀀 and 🫠 are 3: cuts inside their bytes must move to a character edge
        text = "".join(rng.choices(["a", "中", "龘", "𠀀", "🦩", "🫠", " ", "，"], k=rng.randint(1, 30)))
        pieces = tok.split(text, 3)
        assert "".join(pieces) == text and max(tok.count_many(pieces)) <= 3


def test_split_refuses_the_impossible() -> None:
    tok = qwen_tokenizer()
    assert tok.split("", 5) == []
    with pytest.raises(ValueError, match="at least 1"):
        tok.split("abc", 0)
    with pytest.raises(ValueError, match="needs more than 2 tokens"):
        tok.split("ab𠀀", 2)  # one character, three tokens
    with pytest.raises(ValueError, match="needs more than 4 tokens"):
        tok.split("ab\ufb2c", 4)  # NFC makes it three code points, five tokens


def test_a_missing_data_dir_fails_on_first_use(tmp_path: Path) -> None:
    lazy = QwenTokenizer(files_dir=str(tmp_path))  # nothing is read yet
    with pytest.raises(FileNotFoundError):
        lazy.count("x")


def test_prepared_tables_tokenise_exactly_as_the_json_and_a_damaged_file_is_replaced(
    corpus: list[str], tmp_path: Path
) -> None:
    """The tables kept ready in the cache folder (loaded in 0.05 s instead of 0.7 s) give the same ids."""
    plain = QwenTokenizer()
    first = QwenTokenizer(prepared_dir=str(tmp_path))
    sample = corpus[:50]
    assert [first.encode(t) for t in sample] == [plain.encode(t) for t in sample]
    (prepared,) = tmp_path.glob("qwen3-*.pickle")  # written by the first load, named after tokenizer.json's stat
    again = QwenTokenizer(prepared_dir=str(tmp_path))  # loads the prepared file
    assert [again.encode(t) for t in sample] == [plain.encode(t) for t in sample]
    assert again.eos_token_id == plain.eos_token_id
    prepared.write_bytes(b"not a pickle")
    damaged = QwenTokenizer(prepared_dir=str(tmp_path))
    assert damaged.count(sample[0]) == plain.count(sample[0])
    assert prepared.read_bytes() != b"not a pickle"  # prepared again
