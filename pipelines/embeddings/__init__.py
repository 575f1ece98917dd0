"""Embedding providers: the SGLang/OpenAI-compatible server (or a pool of them) and the embedded default."""
