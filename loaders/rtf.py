"""Rich Text Format (.rtf): the text, as one Document, through striprtf.

RTF is 7-bit text in principle: characters outside ASCII come as ``\\'xx`` bytes in the document's code page
(``\\ansicpg936`` for GBK, Chinese Windows' default) or as ``\\uN`` code points, both of which striprtf decodes;
some writers put raw 8-bit bytes in instead, which are decoded here with the same code page. Pictures and
embedded objects carry no text and are dropped; so is the formatting (headings in RTF are only formatting, so
no ``section`` comes out). Tables come out as lines of cells separated by ``|``, as striprtf writes them.

Also used for the Word files that are RTF under a .doc name (`loaders.doc`), which Word and WPS write on
"Save as Word 97-2003" from some versions and which many web sites serve.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from striprtf.striprtf import rtf_to_text

from loaders.errors import LoadError, reason
from loaders.options import ReadOptions
from loaders.source import AnyPath

RTF_MAGIC = b"{\\rtf"
_CODE_PAGE = re.compile(rb"\\ansicpg(\d+)")
_DEFAULT_CODE_PAGE = "cp1252"  # RTF's default (\ansi) when no \ansicpg is given


class RtfFileLoader(BaseLoader):
    """An .rtf file as one Document with ``start_index`` 0; raises `LoadError` for an empty file, a file that is
    not RTF, and one without text.

    Usage (a LangChain document loader: any str or path-like)::

        docs = RtfFileLoader("通知.rtf").load()
    """

    def __init__(self, path: AnyPath, options: ReadOptions | None = None) -> None:
        self.path = Path(path)  # `options` hold nothing for RTF: no pages, no password, no pixels

    def lazy_load(self) -> Iterator[Document]:
        data = self.path.read_bytes()
        if not data.strip():
            raise LoadError("empty file")
        if not data.lstrip().startswith(RTF_MAGIC):
            raise LoadError("not an RTF file: it does not start with {\\rtf")
        page = _CODE_PAGE.search(data[:4096])
        codec = f"cp{int(page.group(1))}" if page else _DEFAULT_CODE_PAGE
        try:
            text = rtf_to_text(data.decode(codec, errors="replace"), encoding=codec, errors="replace")
        except LookupError:  # a code page Python does not know: striprtf falls back the same way
            text = rtf_to_text(data.decode(_DEFAULT_CODE_PAGE, errors="replace"), errors="replace")
        except Exception as err:  # striprtf's regular expressions and int() on malformed control words
            raise LoadError(f"corrupt RTF file: {reason(err)}") from err
        lines = [" ".join(line.split()) for line in text.splitlines()]
        content = "\n".join(line for line in lines if line)
        if not content:
            raise LoadError("no text in the RTF file")
        yield Document(page_content=content, metadata={"start_index": 0})
