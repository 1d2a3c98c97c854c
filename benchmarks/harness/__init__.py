"""The benchmark harness behind ``benchmarks/run.py`` and ``sparsevid bench`` (see ``benchmarks/run.py``).

Modules: ``config`` (BenchConfig, constants, machine label), ``cases`` (case folders, scaled copies,
synthetic cases, poses per case), ``scoring`` (peer runs and scores on ``sparsevid.eval``),
``isolation`` (each sparsevid run in its own spawned process), ``report`` (JSON, markdown,
BENCHMARKS.md block, comparison image, log lines), ``runner`` (``run_bench``: the flow).
"""
