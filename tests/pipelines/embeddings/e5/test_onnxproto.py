from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort

from pipelines.embeddings.e5.onnxproto import MS_DOMAIN, Graph


def _run(graph: Graph, **feeds: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(graph.model(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def test_initializers_nodes_and_dynamic_shapes() -> None:
    g = Graph()
    g.input("x", np.float32, ["rows", 3])
    weight = g.constant("w", np.arange(6, dtype=np.float32).reshape(3, 2))
    product = g.node("MatMul", ["x", weight], ["xw"])
    g.node("Add", [product, g.constant("b", np.array([0.5, -1.0], dtype=np.float32))], ["y"])
    g.output("y", np.float32, ["rows", 2])
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    (y,) = _run(g, x=x)
    np.testing.assert_allclose(y, x @ np.arange(6, dtype=np.float32).reshape(3, 2) + [0.5, -1.0], rtol=1e-6)


def test_attributes_of_every_kind() -> None:
    # negative int (ten-byte varint), float, list of ints, and an operator from onnxruntime's domain
    g = Graph()
    g.input("x", np.float32, [2, 4])
    normed = g.node(
        "LayerNormalization",
        ["x", g.constant("s", np.ones(4, np.float32)), g.constant("z", np.zeros(4, np.float32))],
        ["n"],
        axis=-1,
        epsilon=1e-5,
    )
    g.node("ReduceMean", [normed], ["m"], axes=[1], keepdims=0)
    g.node("BiasGelu", ["x", g.constant("gb", np.zeros(4, np.float32))], ["gelu"], domain=MS_DOMAIN)
    g.output("m", np.float32, [2])
    g.output("gelu", np.float32, [2, 4])
    x = np.array([[1, 2, 3, 4], [-1, 0, 1, 8]], dtype=np.float32)
    mean, gelu = _run(g, x=x)
    np.testing.assert_allclose(mean, [0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(gelu[1], [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x[1]], rtol=1e-6)


def test_integer_tensors() -> None:
    g = Graph()
    g.input("i", np.int64, [3])
    table = g.constant("table", np.array([10, 20, 30, 40], dtype=np.int32))
    g.node("Gather", [table, "i"], ["o"])
    g.output("o", np.int32, [3])
    (out,) = _run(g, i=np.array([3, 0, 2], dtype=np.int64))
    assert out.tolist() == [40, 10, 30]
