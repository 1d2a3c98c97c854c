"""Benchmark harness of sparsevid (``python benchmarks/run.py`` or ``sparsevid bench``)."""
