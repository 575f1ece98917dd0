"""The HTTP service: the retrieval API, its search page and its docs."""
