"""``qwen-rag doctor``: is the embedding server the model it claims to be, pooled and prompted right?

A server with the wrong pooling or model answers every request and still cannot rank (docs/sglang.md §4.2, "look healthy
but cannot rank"). The check embeds known query/passage pairs and asks that each query ranks its passage first;
for Qwen3-Embedding-0.6B it also compares with the similarities on the model card (docs/sglang.md §4.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipelines.embeddings import Provider

#: (query, its passage): in Chinese and English, and one pair across the two.
PROBES = (
    ("什么是人工智能？", "人工智能是让计算机模拟人类智能的技术，包括机器学习和自然语言处理。"),
    ("What is the capital of China?", "The capital of China is Beijing."),
    ("Explain gravity", "Gravity is a force that attracts two bodies towards each other."),
    ("how to implement binary search", "二分查找在有序数组中每次比较中间元素，把查找范围缩小一半。"),
)
#: The model card's documents for the reference matrix (Qwen3-Embedding README).
CARD_DOCUMENTS = (
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies towards each other. It gives weight to physical objects and is "
    "responsible for the movement of planets around the sun.",
)
CARD_QUERIES = ("What is the capital of China?", "Explain gravity")
#: Tolerance of the card comparison (the protocol notes list ±0.01 as what to verify on a GPU).
CARD_TOLERANCE = 0.01


@dataclass
class DoctorReport:
    model: str
    dimension: int
    context_length: int
    ranking_ok: bool
    similarities: list[list[float]]
    card: list[list[float]] | None = None
    card_ok: bool | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.ranking_ok and self.card_ok is not False


def _unit(rows: list[list[float]]) -> np.ndarray:
    matrix = np.asarray(rows, dtype=np.float64)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def examine(embeddings: Provider) -> DoctorReport:
    """Run the checks against any qwen-rag embeddings provider."""
    profile = embeddings.profile
    queries = np.stack([_unit([embeddings.embed_query(q)])[0] for q, _ in PROBES])
    passages = _unit(embeddings.embed_documents([p for _, p in PROBES]))
    similarities = queries @ passages.T
    ranking_ok = bool((similarities.argmax(axis=1) == np.arange(len(PROBES))).all())
    report = DoctorReport(
        model=embeddings.model_id,
        dimension=int(passages.shape[1]),
        context_length=profile.context_length,
        ranking_ok=ranking_ok,
        similarities=similarities.round(4).tolist(),
    )
    if not ranking_ok:
        report.notes.append(
            "a query does not rank its own passage first: wrong model, wrong pooling (Qwen3 needs last-token), "
            "or the server was not launched with --is-embedding"
        )
    if profile.card_similarities is not None:
        card_q = np.stack([_unit([embeddings.embed_query(q)])[0] for q in CARD_QUERIES])
        card_d = _unit(embeddings.embed_documents(list(CARD_DOCUMENTS)))
        measured = card_q @ card_d.T
        report.card = measured.round(4).tolist()
        report.card_ok = bool(np.abs(measured - np.asarray(profile.card_similarities)).max() <= CARD_TOLERANCE)
        if not report.card_ok:
            report.notes.append(
                f"similarities differ from the model card's {profile.card_similarities} by more than "
                f"{CARD_TOLERANCE}: check the model revision (EOS appended?), pooling and the query instruction"
            )
    return report
