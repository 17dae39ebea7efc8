"""Benchmarks of lstm-doctor (run as modules: python -m bench.NAME)."""
