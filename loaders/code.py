"""Source code: decoded and streamed like plain text, tagged with its programming language.

Why not langchain-community's ``LanguageParser``: it cuts code into functions with tree-sitter (another native
dependency) and knows fewer extensions. Splitting is the chunker's job (it can use the ``language`` metadata for
``RecursiveCharacterTextSplitter.from_language``), so here a file is one Document unless it is huge.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from pathlib import Path

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from loaders.languages import LANGUAGES
from loaders.source import AnyPath
from loaders.text import BLOCK_SIZE, TextFileLoader

__all__ = ["LANGUAGES", "CodeFileLoader"]


class CodeFileLoader(BaseLoader):
    """A source file as Documents (one unless it exceeds `block_size` bytes) with ``language`` metadata.

    Metadata: ``start_index`` (character offset in the file) and, when `language` is known, ``language`` (the
    `Language` value, a plain str such as "python"); without `language`, the file's extension names it.

    Usage (a LangChain document loader: any str or path-like)::

        docs = CodeFileLoader("app/main.py").load()  # docs[0].metadata == {"start_index": 0, "language": "python"}
    """

    def __init__(self, path: AnyPath, language: str | None = None, *, block_size: int = BLOCK_SIZE) -> None:
        self.path = Path(path)
        language = language or LANGUAGES.get(self.path.suffix.lower())
        # LangChain's `Language` members are str enums: keep the plain value, which is what Chroma stores.
        self.language = language.value if isinstance(language, Enum) else language
        self.block_size = block_size

    def lazy_load(self) -> Iterator[Document]:
        for doc in TextFileLoader(self.path, block_size=self.block_size).lazy_load():
            if self.language is not None:
                doc.metadata["language"] = self.language
            yield doc
