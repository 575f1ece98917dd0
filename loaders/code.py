"""Source code: decoded and streamed like plain text, tagged with its programming language.

Why not langchain-community's ``LanguageParser``: it cuts code into functions with tree-sitter (another native
dependency) and knows fewer extensions. Splitting is the chunker's job (it can use the ``language`` metadata for
``RecursiveCharacterTextSplitter.from_language``), so here a file is one Document unless it is huge.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from langchain_text_splitters import Language

from loaders.text import BLOCK_SIZE, TextFileLoader

#: Extension (lower case, with the dot) -> language. ``None``: code that `Language` has no entry for (shell,
#: SQL); such Documents carry no ``language`` and get the chunker's generic separators.
LANGUAGES: dict[str, Language | None] = {
    ".py": Language.PYTHON,
    ".pyi": Language.PYTHON,
    ".js": Language.JS,
    ".mjs": Language.JS,
    ".cjs": Language.JS,
    ".jsx": Language.JS,
    ".ts": Language.TS,
    ".mts": Language.TS,
    ".tsx": Language.TS,
    ".java": Language.JAVA,
    ".kt": Language.KOTLIN,
    ".kts": Language.KOTLIN,
    ".scala": Language.SCALA,
    ".go": Language.GO,
    ".rs": Language.RUST,
    ".c": Language.C,
    ".h": Language.C,
    ".cpp": Language.CPP,
    ".cc": Language.CPP,
    ".cxx": Language.CPP,
    ".hpp": Language.CPP,
    ".hh": Language.CPP,
    ".cs": Language.CSHARP,
    ".rb": Language.RUBY,
    ".php": Language.PHP,
    ".swift": Language.SWIFT,
    ".lua": Language.LUA,
    ".pl": Language.PERL,
    ".pm": Language.PERL,
    ".r": Language.R,
    ".hs": Language.HASKELL,
    ".ex": Language.ELIXIR,
    ".exs": Language.ELIXIR,
    ".sol": Language.SOL,
    ".proto": Language.PROTO,
    ".ps1": Language.POWERSHELL,
    ".tex": Language.LATEX,
    ".sh": None,
    ".bash": None,
    ".zsh": None,
    ".sql": None,
}


class CodeFileLoader(BaseLoader):
    """A source file as Documents (one unless it exceeds `block_size` bytes) with ``language`` metadata.

    Metadata: ``start_index`` (character offset in the file) and, when `language` is known, ``language`` (the
    `Language` value, a plain str such as "python").

    Usage::

        loader = CodeFileLoader(Path("app/main.py"), LANGUAGES[".py"])
        doc = next(loader.lazy_load())  # doc.metadata == {"start_index": 0, "language": "python"}
    """

    def __init__(self, path: Path, language: Language | None, *, block_size: int = BLOCK_SIZE) -> None:
        self.path = path
        self.language = language
        self.block_size = block_size

    def lazy_load(self) -> Iterator[Document]:
        for doc in TextFileLoader(self.path, block_size=self.block_size).lazy_load():
            if self.language is not None:
                doc.metadata["language"] = self.language.value
            yield doc
