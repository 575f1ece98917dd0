"""The Chroma store: collections, their model signature, and the per-file records every chunk carries."""
