"""Files in, LangChain ``Document``s out: walking folders, reading each format, chunking by model tokens.

Loaders know nothing of embeddings or stores. Importing this package is cheap: each format's module (and its
parser library) is imported when the first file of that format is read.

>>> from pathlib import Path
>>> from loaders import Problem, walk, read
>>> files = [f for f in walk([Path("data/samples")]) if not isinstance(f, Problem)]
>>> docs = list(read(files[0]))
>>> sorted(docs[0].metadata)[:3]
['file_hash', 'file_type', 'source']
"""

from loaders.errors import LoadError, Problem
from loaders.options import LayoutMode, OcrMode, ReadOptions
from loaders.registry import SUPPORTED_EXTENSIONS, read
from loaders.source import SourceFile
from loaders.walk import walk

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "LayoutMode",
    "LoadError",
    "OcrMode",
    "Problem",
    "ReadOptions",
    "SourceFile",
    "read",
    "walk",
]
