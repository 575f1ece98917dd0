"""``qwen-rag compare``: the same queries against two setups, side by side.

A setup is the shared settings plus overrides, e.g. ``collection=docs-06b,embeddings-url=http://gpu:30000/v1`` against
``collection=docs-8b,embeddings-url=http://gpu:30001/v1`` (the tutorial's 0.6B-versus-8B table), or ``mode=dense``
against ``mode=hybrid``. For each query: the top-k of each side and their overlap (by source document); with a
dataset, each side's metrics too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.errors import ConfigError
from pipelines.evaluate.metrics import METRIC_KEYS
from pipelines.evaluate.run import EvalResult, evaluate
from pipelines.retrieve.passages import passage, where
from pipelines.retrieve.retriever import build_retriever
from pipelines.settings import Settings


def side_settings(base: Settings, overrides: str) -> Settings:
    """``base`` with ``key=value`` overrides (comma-separated; field names with - or _), validated as usual."""
    values: dict[str, Any] = base.model_dump()
    for item in filter(None, (part.strip() for part in overrides.split(","))):
        key, sep, value = item.partition("=")
        name = key.strip().replace("-", "_")
        if not sep or name not in Settings.model_fields:
            raise ConfigError(f"'{item}' is not FIELD=VALUE with a settings field (e.g. collection=docs)")
        values[name] = [value] if name == "embeddings_url" else value
    for secret in ("api_key", "pdf_password"):
        if values.get(secret) is not None and not isinstance(values[secret], str):
            values[secret] = getattr(base, secret).get_secret_value()
    return Settings(**values)


@dataclass
class QueryComparison:
    query: str
    a: list[dict[str, Any]]
    b: list[dict[str, Any]]
    overlap: float  # share of the top-k sources both sides return


@dataclass
class Comparison:
    a_label: str
    b_label: str
    queries: list[QueryComparison] = field(default_factory=list)
    a_metrics: list[EvalResult] = field(default_factory=list)
    b_metrics: list[EvalResult] = field(default_factory=list)


def _hits(settings: Settings, query: str) -> list[dict[str, Any]]:
    return [passage(d) for d in build_retriever(settings).invoke(query)]


def compare(
    queries: Sequence[str],
    a: Settings,
    b: Settings,
    *,
    labels: tuple[str, str] = ("A", "B"),
    dataset: Path | None = None,
    split: str = "test",
) -> Comparison:
    result = Comparison(*labels)
    if dataset is not None:
        # First: evaluating also builds (or refreshes) each side's index of the dataset.
        result.a_metrics = evaluate(dataset, split, a, modes=[a.mode])
        result.b_metrics = evaluate(dataset, split, b, modes=[b.mode])
    for query in queries:
        left, right = _hits(a, query), _hits(b, query)
        shared = {h["source"] for h in left} & {h["source"] for h in right}
        result.queries.append(QueryComparison(query, left, right, len(shared) / max(1, min(a.k, b.k))))
    return result


def render(result: Comparison) -> str:
    lines = []
    for qc in result.queries:
        lines.append(f"## {qc.query}  (overlap {qc.overlap:.0%})")
        lines.append(f"| rank | {result.a_label} | {result.b_label} |")
        lines.append("|---|---|---|")
        for rank in range(max(len(qc.a), len(qc.b))):
            cells = []
            for hits in (qc.a, qc.b):
                if rank < len(hits):
                    cells.append(f"{where(hits[rank])} ({hits[rank]['score']:.4f})")
                else:
                    cells.append("")
            lines.append(f"| {rank + 1} | {cells[0]} | {cells[1]} |")
        lines.append("")
    if result.a_metrics and result.b_metrics:
        keys = METRIC_KEYS
        lines.append("| side | " + " | ".join(keys) + " |")
        lines.append("|---" * (len(keys) + 1) + "|")
        for label, metrics in ((result.a_label, result.a_metrics[0]), (result.b_label, result.b_metrics[0])):
            lines.append(f"| {label} | " + " | ".join(f"{metrics.metrics[k]:.4f}" for k in keys) + " |")
    return "\n".join(lines) + "\n"
