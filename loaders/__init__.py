"""Files in, LangChain ``Document``s out: walking folders, reading each format, chunking by model tokens.

Loaders know nothing of embeddings or stores.

>>> from pathlib import Path
>>> from loaders import walk, read
>>> files = [f for f in walk([Path("data/samples")]) if not isinstance(f, Problem)]
>>> docs = list(read(files[0]))
>>> sorted(docs[0].metadata)[:3]
['file_hash', 'file_type', 'source']
"""

from loaders.errors import LoadError, Problem
from loaders.registry import SUPPORTED_EXTENSIONS, read
from loaders.walk import SourceFile, walk

__all__ = ["SUPPORTED_EXTENSIONS", "LoadError", "Problem", "SourceFile", "read", "walk"]
