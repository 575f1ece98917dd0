"""Helpers for tests/loaders/test_isolation.py, importable by worker processes."""
