"""Hyper-parameter sweeps: a grid of trials from a sweep config, run locally or on Ray.

    from cnn_jax.sweep import run_sweep, build_report
    run_sweep(sweep_config, "sweeps/filter")          # plan, run, results, report
    build_report("sweeps/filter")                      # rebuild report.md from the files

Modules: keys (dotted paths), grid (expansion and trial ids), plan (size relations, invalid
trials), trialdir (a trial's folder and status), worker (one trial in this process), compiles
(counting XLA compilations), run (the driver), ray_executor, results (CSV/JSONL), report, plots,
hparams (TensorBoard), log (the sweep log).
"""

from cnn_jax.sweep.grid import Dimension, Sweep, Trial, expand, load_sweep
from cnn_jax.sweep.keys import SweepError, canonical_key, parse_key, set_value
from cnn_jax.sweep.outcome import SweepOutcome
from cnn_jax.sweep.report import build_report
from cnn_jax.sweep.run import run_sweep

__all__ = [
    "Dimension", "Sweep", "SweepError", "SweepOutcome", "Trial", "build_report", "canonical_key",
    "expand", "load_sweep", "parse_key", "run_sweep", "set_value",
]
