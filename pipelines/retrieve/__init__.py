"""Retrieval: dense, BM25 and hybrid search over a collection, with filters, MMR and rerank."""
