"""counter_for: each model's own tokenizer, its library imported only when asked for."""

from __future__ import annotations

import pytest

from pipelines.embeddings.counters import counter_for
from tests.pipelines.embeddings.support import imported_by


def test_each_tokenizer_counts_in_its_own_tokens() -> None:
    e5, qwen = counter_for("e5"), counter_for("qwen3")
    assert (e5.name, qwen.name) == ("e5", "qwen3")
    assert (e5.count("什么是人工智能？"), e5.special_tokens) == (4, 4)
    assert qwen.special_tokens == 1  # the EOS SGLang's tokenizer appends


def test_an_unknown_tokenizer_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown tokenizer 'bert'"):
        counter_for("bert")


def test_counting_e5_tokens_loads_no_model_runtime() -> None:
    # Chunking for an e5 model behind a server needs e5's tokenizer, never its encoder.
    assert imported_by("from pipelines.embeddings.counters import counter_for; counter_for('e5').count('x')") == set()
