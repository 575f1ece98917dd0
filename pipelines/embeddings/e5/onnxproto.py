"""Just enough of the ONNX protobuf format to write an inference graph, so the ``onnx`` package is not needed.

onnxruntime (already installed with chromadb) runs the model; building it needs only these few messages of
``onnx.proto3``: ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto and ValueInfoProto. Field
numbers below are that file's. onnxruntime itself is the test: it rejects a malformed model on load.

>>> import numpy as np
>>> graph = Graph()
>>> graph.input("x", np.float32, ["n"])
>>> graph.node("Relu", ["x"], ["y"])
'y'
>>> graph.output("y", np.float32, ["n"])
>>> data = graph.model()     # bytes for onnxruntime.InferenceSession(data)
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

# TensorProto.DataType
_DATA_TYPES = {
    np.dtype(np.float32): 1,
    np.dtype(np.uint8): 2,
    np.dtype(np.int8): 3,
    np.dtype(np.int32): 6,
    np.dtype(np.int64): 7,
}
IR_VERSION = 8
OPSET = 17  # LayerNormalization is standard from 17 on
MS_DOMAIN = "com.microsoft"  # onnxruntime's fused kernels: MultiHeadAttention, SkipLayerNormalization, BiasGelu

_VARINT, _LENGTH_DELIMITED, _FIXED32 = 0, 2, 5


def _varint(value: int) -> bytes:
    if value < 0:  # int64 fields carry negatives as their two's complement, ten bytes long
        value += 1 << 64
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3 | _VARINT) + _varint(value)


def _bytes(field: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _varint(field << 3 | _LENGTH_DELIMITED) + _varint(len(data)) + data


def _float(field: int, value: float) -> bytes:
    return _varint(field << 3 | _FIXED32) + struct.pack("<f", value)


#: What an operator's attribute can be here: an int (a bool too), a float, a string or a list of ints.
Attribute = int | float | str | Sequence[int]


def _attribute(name: str, value: Attribute) -> bytes:
    # AttributeProto: name=1, f=2, i=3, s=4, ints=8, type=20 (FLOAT=1, INT=2, STRING=3, INTS=7)
    head = _bytes(1, name)
    if isinstance(value, int):  # bool included
        return head + _int(3, int(value)) + _int(20, 2)
    if isinstance(value, float):
        return head + _float(2, value) + _int(20, 1)
    if isinstance(value, str):
        return head + _bytes(4, value) + _int(20, 3)
    return head + b"".join(_int(8, v) for v in value) + _int(20, 7)


def _value_info(name: str, dtype: type | np.dtype, shape: Sequence[int | str]) -> bytes:
    # ValueInfoProto{name=1, type=2: TypeProto{tensor_type=1: {elem_type=1, shape=2: {dim=1: {value=1|param=2}}}}}
    dims = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _bytes(2, d)) for d in shape)
    tensor_type = _int(1, _DATA_TYPES[np.dtype(dtype)]) + _bytes(2, dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


class Graph:
    """An ONNX graph under construction: initializers, nodes, inputs and outputs, serialised by ``model()``."""

    def __init__(self) -> None:
        self._nodes: list[bytes] = []
        self._initializers: list[bytes] = []
        self._inputs: list[bytes] = []
        self._outputs: list[bytes] = []

    def constant(self, name: str, array: np.ndarray) -> str:
        """Add a weight (TensorProto: dims=1, data_type=2, name=8, raw_data=9); returns its name."""
        array = np.ascontiguousarray(array)
        tensor = b"".join(_int(1, d) for d in array.shape) + _int(2, _DATA_TYPES[array.dtype])
        self._initializers.append(
            tensor + _bytes(8, name) + _bytes(9, array.astype(array.dtype.newbyteorder("<")).tobytes())
        )
        return name

    def node(
        self, op: str, inputs: Sequence[str], outputs: Sequence[str], domain: str = "", **attributes: Attribute
    ) -> str:
        """Add an operator (NodeProto: input=1, output=2, op_type=4, attribute=5, domain=7); returns its 1st output."""
        body = b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs) + _bytes(4, op)
        body += b"".join(_bytes(5, _attribute(k, v)) for k, v in attributes.items())
        if domain:
            body += _bytes(7, domain)
        self._nodes.append(body)
        return outputs[0]

    def input(self, name: str, dtype: type | np.dtype, shape: Sequence[int | str]) -> None:
        self._inputs.append(_value_info(name, dtype, shape))

    def output(self, name: str, dtype: type | np.dtype, shape: Sequence[int | str]) -> None:
        self._outputs.append(_value_info(name, dtype, shape))

    def model(self) -> bytes:
        """The serialised ModelProto (ir_version=1, opset_import=8, graph=7)."""
        # GraphProto: node=1, name=2, initializer=5, input=11, output=12
        graph = b"".join(_bytes(1, n) for n in self._nodes) + _bytes(2, "main")
        graph += b"".join(_bytes(5, t) for t in self._initializers)
        graph += b"".join(_bytes(11, i) for i in self._inputs) + b"".join(_bytes(12, o) for o in self._outputs)
        opsets = _bytes(8, _bytes(1, "") + _int(2, OPSET)) + _bytes(8, _bytes(1, MS_DOMAIN) + _int(2, 1))
        return _int(1, IR_VERSION) + opsets + _bytes(7, graph)
