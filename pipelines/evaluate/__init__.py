"""Evaluation: BEIR datasets, retrieval metrics, runs, comparisons and reports."""
