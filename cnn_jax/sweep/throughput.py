"""Sweep throughput: the same trials run one at a time and several at a time, timed and compared.

    measure_parallel(sweep_config, root, counts=(1, 2), max_trials=6)

Each count runs the sweep afresh in root/parallel<N> (its own compilation cache, so every run
compiles from cold), with the local executor, and records the wall time and every trial's
validation and test accuracy; `identical` says whether every count gave the same numbers to the
last digit. `experiments/sweep_throughput.py` prints the table BENCHMARKS.md quotes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import ml_collections

from cnn_jax.sweep import results as tables

ACCURACIES = ("best_val_accuracy", "test_accuracy")


def measure_parallel(sweep_config: ml_collections.ConfigDict, root: str | Path, *,
                     counts: tuple[int, ...] = (1, 2), max_trials: int | None = None,
                     pin_cpus: bool = False, compilation_cache: str | None = None
                     ) -> dict[str, Any]:
    """Runs the sweep once per count of workers; returns {rows, identical, load}: one row per
    count with workers, trials, seconds, trials_per_minute, speedup (against the first count)
    and accuracies ({trial: (best val, test)}). `pin_cpus`: see `cnn_jax.sweep.parallel`;
    `compilation_cache`: one cache for every count (default: each its own, cold)."""
    from cnn_jax.sweep.run import run_sweep

    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    for workers in counts:
        workdir = Path(root) / f"parallel{workers}"
        start = time.perf_counter()
        run_sweep(sweep_config, workdir, executor="local", parallel=workers,
                  max_trials=max_trials, report=False, echo=False, pin_cpus=pin_cpus,
                  compilation_cache=compilation_cache)
        seconds = time.perf_counter() - start
        _, trial_rows = tables.collect(workdir)
        accuracies = {row["trial"]: tuple(row.get(key) for key in ACCURACIES)
                      for row in trial_rows if row["status"] == "done"}
        rows.append({"workers": workers, "trials": len(accuracies), "seconds": seconds,
                     "trials_per_minute": 60 * len(accuracies) / seconds,
                     "accuracies": accuracies})
    for row in rows:
        row["speedup"] = rows[0]["seconds"] / row["seconds"] * row["trials"] / max(
            rows[0]["trials"], 1)
    identical = all(row["accuracies"] == rows[0]["accuracies"] for row in rows)
    return {"rows": rows, "identical": identical,
            "load": {"before": load_before, "after": os.getloadavg()}}


def format_table(measured: dict[str, Any]) -> str:
    """The measurement as a markdown table, with the verdict on the accuracies."""
    lines = ["| trials at a time | trials | wall time (s) | trials per minute | speed-up |",
             "|---|---|---|---|---|"]
    for row in measured["rows"]:
        lines.append(f"| {row['workers']} | {row['trials']} | {row['seconds']:.1f} | "
                     f"{row['trials_per_minute']:.2f} | {row['speedup']:.2f}× |")
    if len(measured["rows"]) < 2:
        same = "one run, nothing to compare"
    elif measured["identical"]:
        same = ("identical in every run (validation and test accuracy of every trial, to the "
                "last digit)")
    else:
        same = "NOT identical between the runs"
    before, after = measured["load"]["before"], measured["load"]["after"]
    lines += ["", f"Accuracies: {same}. Load average (1, 5, 15 min) before "
              f"{before[0]:.2f} {before[1]:.2f} {before[2]:.2f}, after "
              f"{after[0]:.2f} {after[1]:.2f} {after[2]:.2f}."]
    return "\n".join(lines)
