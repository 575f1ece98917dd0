"""Token-budgeted, CJK-aware splitting of Documents: the context guarantee lives here.

Every chunk holds at most ``min(chunk_tokens, max_tokens)`` tokens *including* the specials the model adds, counted
by the model's own tokenizer on the final chunk text. Chunks end at the strongest boundary available in the back
half of the budget: code structure (for documents with ``metadata["language"]``), paragraphs, lines, sentences
(。！？； and ". "), clauses (，、 and ", "), words, and only then between two characters. About
``overlap_tokens`` of each chunk's tail, from a boundary, starts the next one; it gives way where the next sentence
would not fit beside it, as a sentence that fits a chunk is never cut.

Tables (Documents with ``metadata["table_header"]``, written by :mod:`loaders.tables`) are kept whole: one chunk if
the table fits, else pieces of whole rows, each starting with the header lines again, as even as their number
allows. A row too long to go with the header is cut by the rules above into parts that each do; a header too long
to leave room for any row sends the whole table to those rules. Table pieces never overlap (that would repeat
rows), ``table_header`` is not copied into the chunks, and with ``row_start`` in the metadata each piece gets
``row_start`` and ``row_end`` of the rows it holds. A piece's ``start_index`` locates its own text, after the
repeated header: its first row (or part of a row); the first piece starts with the header itself, at 0.

Positions (``metadata["line_boxes"]``, written by the PDF loader, see :mod:`loaders.positions`) become each chunk's
``boxes``: those of the lines its own text meets.

>>> from langchain_core.documents import Document
>>> from loaders.tokens import qwen_tokenizer
>>> chunker = Chunker(qwen_tokenizer(), ChunkSpec(chunk_tokens=12, overlap_tokens=6))
>>> [c.page_content for c in chunker.split(Document("第一句话很短。第二句话也不长。第三句话在这里结束。"))]
['第一句话很短。第二句话也不长。', '第二句话也不长。第三句话在这里结束。']
>>> from loaders.tables import table_document
>>> rows = [["北京", "2185万"], ["上海", "2487万"], ["广州", "1883万"]]
>>> table = table_document(["城市", "人口"], rows, {"row_start": 2})
>>> for chunk in Chunker(qwen_tokenizer(), ChunkSpec(chunk_tokens=40, overlap_tokens=8)).split(table):
...     print(chunk.metadata["row_start"], chunk.metadata["row_end"], chunk.page_content.splitlines())
2 3 ['| 城市 | 人口 |', '| --- | --- |', '| 北京 | 2185万 |', '| 上海 | 2487万 |']
4 4 ['| 城市 | 人口 |', '| --- | --- |', '| 广州 | 1883万 |']
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

from langchain_core.documents import Document
from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from loaders.positions import BOXES, LINE_BOXES, chunk_boxes
from loaders.tables import TABLE_HEADER
from loaders.tokens import TokenCounter


@dataclass(frozen=True)
class ChunkSpec:
    """Chunk sizes in tokens, the model's specials included.

    ``chunk_tokens`` above ``max_tokens`` is clamped to it; ``overlap_tokens`` must stay below ``chunk_tokens``.

    >>> ChunkSpec(chunk_tokens=40_000).chunk_tokens
    32761
    """

    chunk_tokens: int = 512  # target size of a chunk
    overlap_tokens: int = 64  # about this much of a chunk's tail starts the next one
    max_tokens: int = 32761  # hard cap per chunk, never exceeded (Qwen3 on SGLang: 32768 - 7)

    def __post_init__(self) -> None:
        if self.max_tokens < 1 or self.chunk_tokens < 1:
            raise ValueError(
                f"chunk_tokens and max_tokens must be positive, got {self.chunk_tokens}, {self.max_tokens}"
            )
        object.__setattr__(self, "chunk_tokens", min(self.chunk_tokens, self.max_tokens))
        if not 0 <= self.overlap_tokens < self.chunk_tokens:
            raise ValueError(
                f"overlap_tokens must be at least 0 and smaller than chunk_tokens ({self.chunk_tokens}), "
                f"got {self.overlap_tokens}: lower the overlap or raise the chunk size"
            )


@dataclass(frozen=True)
class _Level:
    """One kind of boundary. Trailing separators stay with the text before them (a sentence keeps its 。);
    leading ones (code keywords such as ``def``) start the text after them."""

    pattern: re.Pattern[str]
    leading: bool = False

    def cuts(self, text: str, lo: int, hi: int) -> list[int]:
        """Cut positions strictly inside ``text[lo:hi]``, ascending."""
        out: list[int] = []
        for match in self.pattern.finditer(text, lo, hi):
            if self.leading:
                found = match.group()
                cut = match.start() + len(found) - len(found.lstrip("\r\n"))  # the newline ends the text before
            else:
                cut = match.end()
            if lo < cut < hi and (not out or cut > out[-1]):
                out.append(cut)
        return out


_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CLOSERS = r"\"')\]”’」』）》】〕"
# A sentence: CJK enders need no space after them; ". " does (and no lower-case word after it, as in "R. d. duvauceli"
# or "e.g. this"), or a CJK character before it.
_SENTENCE = _Level(
    re.compile(rf"[。！？；｡．]+[{_CLOSERS}]*|[.!?]+[{_CLOSERS}]*\s+(?![\sa-z])|(?<=[{_CJK}])[.!?;]+[{_CLOSERS}]*")
)
_PROSE = (
    _Level(re.compile(r"\n(?:[^\S\n]*\n)+")),  # paragraph: a blank line (spaces on it allowed)
    _Level(re.compile(r"\n")),  # line
    _SENTENCE,
    _Level(re.compile(r"[，、：]+|[,;](?!\d)\s*|:\s+")),  # clause; "1,000" is not a clause boundary
    _Level(re.compile(r"\s+")),  # word
)


@cache
def _levels(language: str | None) -> tuple[_Level, ...]:
    """Boundaries, strongest first: the language's code separators (if it is one LangChain knows), then prose."""
    if not language:
        return _PROSE
    try:
        separators = RecursiveCharacterTextSplitter.get_separators_for_language(Language(language))
    except ValueError:  # not a code language LangChain knows (or one it has no separators for): prose rules
        return _PROSE
    # Blank lines, newlines and spaces are already prose levels; "" (split anywhere) is the counter's hard split.
    code = [sep for sep in separators if not any(re.fullmatch(sep, ws) for ws in ("", " ", "\n", "\n\n"))]
    return (*(_Level(re.compile(sep), leading=True) for sep in code), *_PROSE)


@dataclass(frozen=True, slots=True)
class _Piece:
    """A span of the text that fits the budget, with the strength of the boundary at its end (0 = strongest)."""

    start: int
    end: int
    tokens: int
    level: int
    hard: bool = False  # cut out of a run with no separator, between two characters


@dataclass(frozen=True, slots=True)
class _TablePart:
    """A chunk of a table: ``text[start:end]``, after the header lines and a newline if ``headed``."""

    start: int
    end: int
    tokens: int
    headed: bool = False


class Chunker:
    """Splits Documents into chunks that fit the embedding model, cut at the strongest boundary available.

    Each chunk copies the input metadata and adds ``start_index`` (the input's own ``start_index``, default 0,
    plus the chunk's character offset in ``page_content``) and ``tokens`` (its exact size, specials included).
    Chunks are never empty or whitespace-only; their surrounding whitespace is trimmed.

    >>> from langchain_core.documents import Document
    >>> from loaders.tokens import qwen_tokenizer
    >>> chunker = Chunker(qwen_tokenizer(), ChunkSpec(chunk_tokens=512, overlap_tokens=64))
    >>> doc = Document("def f():\\n    return 1\\n", metadata={"source": "a.py", "language": "python"})
    >>> chunker.split(doc)[0].metadata
    {'source': 'a.py', 'language': 'python', 'start_index': 0, 'tokens': 8}
    """

    def __init__(self, counter: TokenCounter, spec: ChunkSpec | None = None) -> None:
        self.counter = counter
        self.spec = spec or ChunkSpec()
        self._budget = self.spec.chunk_tokens - counter.special_tokens  # content tokens per chunk
        if self._budget < 1:
            raise ValueError(
                f"chunk_tokens={self.spec.chunk_tokens} leaves no room for text next to the "
                f"{counter.special_tokens} special token(s) {counter.name} adds"
            )
        self._overlap = min(self.spec.overlap_tokens, self._budget - 1)

    def split(self, doc: Document) -> list[Document]:
        """The chunks of one Document, in order."""
        if TABLE_HEADER in doc.metadata:
            return self._split_table(doc)
        text = doc.page_content
        base = int(doc.metadata.get("start_index") or 0)
        lines = doc.metadata.get(LINE_BOXES)
        if isinstance(lines, str):
            lines = json.loads(lines)  # once per Document, not per chunk
        fields = {key: value for key, value in doc.metadata.items() if key != LINE_BOXES}
        chunks = []
        for start, end, tokens in self._spans(text, _levels(doc.metadata.get("language"))):
            metadata = {**fields, "start_index": base + start, "tokens": tokens + self.counter.special_tokens}
            if lines and (boxes := chunk_boxes(lines, start, end)) is not None:
                metadata[BOXES] = boxes  # each chunk the boxes of its own lines
            chunks.append(Document(page_content=text[start:end], metadata=metadata))
        return chunks

    def split_many(self, docs: Iterable[Document]) -> Iterator[Document]:
        """The chunks of each Document in turn, lazily."""
        for doc in docs:
            yield from self.split(doc)

    # -- tables: whole rows under a repeated header ----------------------------------------------------------

    def _split_table(self, doc: Document) -> list[Document]:
        text, header = doc.page_content, str(doc.metadata[TABLE_HEADER])
        metadata = {key: value for key, value in doc.metadata.items() if key not in (TABLE_HEADER, LINE_BOXES)}
        rows = _row_spans(text, header)
        if rows is None:  # not laid out as loaders.tables writes tables: plain text
            return self.split(Document(page_content=text, metadata=metadata))
        parts = self._table_parts(text, header, rows)
        if parts is None:  # the header leaves no room for rows
            parts = [_TablePart(*span) for span in self._prose(text, 0, len(text), self._budget)]
        base = int(doc.metadata.get("start_index") or 0)
        first_row = metadata.get("row_start")
        starts, ends = [s for s, _, _ in rows], [e for _, e, _ in rows]
        chunks = []
        for part in parts:
            content = text[part.start : part.end]
            meta = {**metadata, "start_index": base + part.start, "tokens": part.tokens + self.counter.special_tokens}
            if isinstance(first_row, int):
                # The rows the part holds, even in part: the ones its span meets.
                first, last = bisect_right(ends, part.start), bisect_left(starts, part.end) - 1
                if first <= last:
                    meta.update(row_start=first_row + rows[first][2], row_end=first_row + rows[last][2])
                else:  # only header text (a header too long for one chunk): no row to name
                    meta.pop("row_start")
                    meta.pop("row_end", None)
            chunks.append(Document(page_content=header + "\n" + content if part.headed else content, metadata=meta))
        return chunks

    def _table_parts(self, text: str, header: str, rows: list[tuple[int, int, int]]) -> list[_TablePart] | None:
        """The whole table if it fits, else runs of whole rows under the header, and parts of rows too long for
        that; None if the header leaves no room for any row."""
        whole = _trim(text, 0, len(text))
        assert whole is not None  # the text starts with a header that is not blank (_row_spans)
        tokens = self.counter.count(text[whole[0] : whole[1]])
        if tokens <= self._budget:
            return [_TablePart(*whole, tokens)]
        head = self.counter.count(header + "\n")
        if not rows or head >= self._budget:
            return None
        # A row's cost with its newline: the pre-tokenizer ends a token at the newline after the closing "|", so
        # costs add up across rows; each piece is counted once more below all the same, for the cap.
        costs = self.counter.count_many([text[s:e] + "\n" for s, e, _ in rows])
        room = self._budget - head
        parts: list[_TablePart] = []
        todo = _runs(costs, room)[::-1]  # row ranges [i, j) not yet in a part, the next one last
        while todo:
            i, j = todo.pop()
            start, end = rows[i][0], rows[j - 1][1]
            tokens = self.counter.count(header + "\n" + text[start:end])
            if tokens <= self._budget:
                parts.append(_TablePart(start, end, tokens, headed=True))
            elif j - i > 1:  # the costs did not add up after all: the last row goes on to the next run of rows
                following = todo.pop() if todo and costs[j] <= room else (j, j)  # (not to a row cut in parts)
                todo += [(j - 1, following[1]), (i, j - 1)]
            elif (long := self._row_parts(text, header, head, rows[i][:2])) is not None:
                parts += long
            else:
                return None
        if parts[0].start == len(header) + 1:  # the header and first row are the text's own start: say so
            parts[0] = _TablePart(0, parts[0].end, parts[0].tokens)
        return parts

    def _row_parts(self, text: str, header: str, head: int, row: tuple[int, int]) -> list[_TablePart] | None:
        """A row too long to go whole with the header (``head`` tokens), cut by the prose rules into parts that
        each go with it; None if one of its characters alone needs more room than the header leaves."""
        room = self._budget - head
        while room >= 1:
            try:
                spans = self._prose(text, *row, room)
            except ValueError:  # a character needs more than ``room`` tokens
                return None
            counts = self.counter.count_many([header + "\n" + text[s:e] for s, e, _ in spans])
            excess = max(counts) - self._budget
            if excess <= 0:
                return [_TablePart(s, e, n, headed=True) for (s, e, _), n in zip(spans, counts, strict=True)]
            room -= excess  # a part did not add up with the header: cut all of them smaller
        return None

    def _prose(self, text: str, start: int, end: int, budget: int) -> list[tuple[int, int, int]]:
        """``(start, end, content tokens)`` of the prose chunks of ``text[start:end]`` of at most ``budget`` tokens,
        without overlap: table pieces never repeat each other's text."""
        spec = ChunkSpec(budget + self.counter.special_tokens, 0, self.spec.max_tokens)
        return [(start + s, start + e, n) for s, e, n in Chunker(self.counter, spec)._spans(text[start:end], _PROSE)]

    # -- pieces: the text cut only as finely as the budget needs ---------------------------------------------

    def _atomize(
        self,
        text: str,
        piece: _Piece,
        depth: int,
        budget: int,
        levels: tuple[_Level, ...],
        out: list[_Piece],
        hard: bool = True,
    ) -> None:
        """Append ``piece`` to ``out`` if it fits ``budget``, else its parts cut at the first level that has cuts.

        Each part is counted once, at the level it is cut out; only parts still too big are cut (and counted)
        again, so no text is tokenised more than once per level. With ``hard=False`` a part with no separator
        is appended whole even if it is too big.
        """
        if piece.tokens <= budget:
            out.append(piece)
            return
        for d in range(depth, len(levels)):
            cuts = levels[d].cuts(text, piece.start, piece.end)
            if cuts:
                break
        else:  # no separator of any kind: cut between characters
            if not hard:
                out.append(piece)
                return
            parts = self.counter.split(text[piece.start : piece.end], budget)
            pos = piece.start
            for k, (part, tokens) in enumerate(zip(parts, self.counter.count_many(parts), strict=True)):
                level = piece.level if k == len(parts) - 1 else len(levels) + 1
                out.append(_Piece(pos, pos + len(part), tokens, level, hard=True))
                pos += len(part)
            return
        bounds = [piece.start, *cuts, piece.end]
        counts = self.counter.count_many([text[a:b] for a, b in pairwise(bounds)])
        for (a, b), tokens in zip(pairwise(bounds), counts, strict=True):
            self._atomize(
                text, _Piece(a, b, tokens, piece.level if b == piece.end else d + 1), d + 1, budget, levels, out, hard
            )

    # -- chunks: pieces packed up to the budget ---------------------------------------------------------------

    def _spans(self, text: str, levels: tuple[_Level, ...]) -> Iterator[tuple[int, int, int]]:
        """``(start, end, content tokens)`` of each chunk, trimmed of surrounding whitespace."""
        whole = _trim(text, 0, len(text))
        if whole is None:
            return
        pieces: list[_Piece] = []
        root = _Piece(*whole, self.counter.count(text[whole[0] : whole[1]]), 0)
        self._atomize(text, root, 0, self._budget, levels, pieces)
        todo = pieces[::-1]  # pieces not yet in any chunk, the next one last
        carry: list[_Piece] = []  # the overlap: tail of the previous chunk
        while todo:
            chunk, new, total = list(carry), len(carry), sum(p.tokens for p in carry)  # chunk[new:] is new text
            while todo:
                following, room = todo[-1], self._budget - total
                if following.tokens <= room:
                    chunk.append(todo.pop())
                    total += following.tokens
                    continue
                if following.hard:
                    # A run with no separator at all: no boundary to keep, so cut it between characters to fill up.
                    parts = self._cut(text, todo.pop(), room, levels)
                    todo += parts[::-1]
                    if parts[0].tokens <= room:
                        continue
                if len(chunk) > new:
                    break  # end this chunk, at its best boundary
                # The next piece does not fit beside the overlap: make room by cutting it into sentences (or at
                # stronger boundaries). A single sentence that fits a chunk is never cut: the overlap gives way.
                parts = []
                self._atomize(text, todo.pop(), 0, room, levels[: levels.index(_SENTENCE) + 1], parts, hard=False)
                todo += parts[::-1]
                if parts[0].tokens > room:
                    total -= chunk.pop(0).tokens
                    new -= 1
            size = len(chunk) if not todo else self._best_cut(chunk, new)
            first, size, span, tokens = self._fit(text, chunk, new, size)
            todo += chunk[size:][::-1]
            if span is None:  # whitespace only: nothing to embed
                carry = []
                continue
            yield span[0], span[1], tokens
            carry = self._tail(text, chunk[first:size], span[0], levels) if todo else []

    def _cut(self, text: str, piece: _Piece, room: int, levels: tuple[_Level, ...]) -> list[_Piece]:
        """``piece`` in parts that fit ``room`` (between characters if it must), or whole if a character of it
        needs more tokens than that."""
        parts: list[_Piece] = []
        try:
            self._atomize(text, piece, 0, room, levels, parts)
        except ValueError:
            return [piece]
        return parts

    def _fit(self, text: str, chunk: list[_Piece], new: int, size: int) -> tuple[int, int, tuple[int, int] | None, int]:
        """``(first, size, span, tokens)``: the pieces ``chunk[first:size]`` whose trimmed text fits the budget.

        Piece counts are exact, but BPE counts do not add up across a join: count the chunk itself and give back
        pieces (then the overlap) until it fits.
        """
        first = 0
        while True:
            span = _trim(text, chunk[first].start, chunk[size - 1].end)
            if span is None:
                return first, size, None, 0
            if size - first == 1 and span == (chunk[first].start, chunk[first].end):
                return first, size, span, chunk[first].tokens  # already exact (a small document is one piece)
            tokens = self.counter.count(text[span[0] : span[1]])
            if tokens <= self._budget:
                return first, size, span, tokens
            if size - new > 1:
                size -= 1
            elif first < new:
                first = new
            else:  # one piece, whose untrimmed text was counted exactly when it was cut out
                return first, size, (chunk[first].start, chunk[first].end), chunk[first].tokens

    def _best_cut(self, chunk: list[_Piece], new: int) -> int:
        """How many pieces of a full ``chunk`` to keep: end at its strongest boundary in the back half of the
        budget (the latest of equals), so chunks end at paragraphs rather than mid-paragraph when they can."""
        best, best_level, total = len(chunk), None, 0
        for k, piece in enumerate(chunk):
            total += piece.tokens
            if k >= new and 2 * total >= self._budget and (best_level is None or piece.level <= best_level):
                best, best_level = k + 1, piece.level
        return best

    def _tail(self, text: str, chunk: list[_Piece], after: int, levels: tuple[_Level, ...]) -> list[_Piece]:
        """About ``overlap_tokens`` from the end of ``chunk``: from the strongest boundary that gives at least half
        of that; from between two characters only inside a run with no separator, if no boundary gives any.

        The tail starts after ``after``, where the chunk's text starts: a chunk is never repeated whole in the next.
        """
        tail: list[_Piece] = []
        total = 0
        todo = list(chunk)  # the next piece to consider is the last
        while todo:
            piece, room = todo.pop(), self._overlap - total
            if piece.tokens <= room and piece.start > after:
                tail.append(piece)
                total += piece.tokens
                continue
            between = piece.level > len(levels)  # the tail so far starts at a cut between characters
            if piece.tokens <= room or (2 * total >= self._overlap and not between):
                break  # enough overlap, or the piece reaches back to the chunk's start
            parts: list[_Piece] = []  # too little overlap yet: look inside the piece that does not fit
            self._atomize(text, piece, 0, room, levels, parts, hard=False)
            if len(parts) > 1:
                todo += parts
                continue
            if total == 0 or between:  # a run with no separator: rather than no overlap, cut between characters
                tail += self._suffix(text, max(piece.start, after + 1), piece, room)
            break
        return tail[::-1]

    def _suffix(self, text: str, lo: int, piece: _Piece, room: int) -> list[_Piece]:
        """The longest end of ``piece``, starting at ``lo`` or later, that fits ``room`` tokens (bisection: counts
        grow with length, and only the ones found to fit are kept)."""
        too_long, fits, tokens = lo - 1, piece.end, 0
        while fits - too_long > 1:
            mid = (too_long + fits) // 2
            count = self.counter.count(text[mid : piece.end])
            if count <= room:
                fits, tokens = mid, count
            else:
                too_long = mid
        return [_Piece(fits, piece.end, tokens, piece.level)] if fits < piece.end else []


def _row_spans(text: str, header: str) -> list[tuple[int, int, int]] | None:
    """``(start, end, number)`` of each row of a table Document's text, trimmed; None unless the text is its header
    lines, then rows on lines of their own. Row i is the i-th line after the header (a blank line is a row with
    nothing to chunk, left out but counted)."""
    rest = text[len(header) : len(header) + 1]
    if not header.strip() or not text.startswith(header) or rest not in ("", "\n"):
        return None
    spans = []
    pos = len(header) + 1
    for number, line in enumerate(text[pos:].split("\n")):
        if span := _trim(text, pos, pos + len(line)):
            spans.append((*span, number))
        pos += len(line) + 1
    return spans


def _runs(costs: list[int], room: int) -> list[tuple[int, int]]:
    """Consecutive rows ``[i, j)`` per piece, by their ``costs``: as few pieces as filling each up to ``room``
    gives, made as even as that many allow (the smallest cap that needs no more pieces). A row costing more
    than ``room`` is a piece alone."""
    fitting = [cost for cost in costs if cost <= room]
    if not fitting:
        return _pack(costs, room)
    pieces = len(_pack(costs, room))
    low, high = max(fitting), room
    while low < high:  # fewer pieces as the cap grows: bisect for the smallest cap that still gives ``pieces``
        mid = (low + high) // 2
        if len(_pack(costs, mid)) <= pieces:
            high = mid
        else:
            low = mid + 1
    return _pack(costs, low)


def _pack(costs: list[int], cap: int) -> list[tuple[int, int]]:
    """Rows packed in order into runs of at most ``cap`` (a row above it alone in its run)."""
    runs: list[tuple[int, int]] = []
    start, total = 0, 0
    for k, cost in enumerate(costs):
        if k > start and total + cost > cap:
            runs.append((start, k))
            start, total = k, 0
        total += cost
    if costs:
        runs.append((start, len(costs)))
    return runs


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    """``(start, end)`` without surrounding whitespace, or None if only whitespace is there."""
    piece = text[start:end]
    stripped = piece.lstrip()
    if not stripped:
        return None
    start += len(piece) - len(stripped)
    return start, start + len(stripped.rstrip())
