"""Benchmark library behind `python -m experiments.benchmark`: the project's own training path
against a plain PyTorch loop, each in its own worker process, alternated over repetitions.

    from cnn_jax.bench import run_benchmark
    report = run_benchmark(BenchSettings(batch_sizes=(10, 128), steps=200, repeats=5))
"""

from cnn_jax.bench.runner import BenchSettings, run_benchmark

__all__ = ["BenchSettings", "run_benchmark"]
