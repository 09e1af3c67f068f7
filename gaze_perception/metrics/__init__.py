"""Evaluation metrics, defined exactly as the published benchmarks compute them."""
