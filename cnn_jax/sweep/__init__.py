"""Hyper-parameter sweeps: a grid of trials from a sweep config, run locally or on Ray.

    from cnn_jax.sweep import run_sweep, build_report
    run_sweep(sweep_config, "sweeps/filter")          # plan, run, results, report
    build_report("sweeps/filter")                      # rebuild report.md from the files

Modules: keys (dotted paths), grid (expansion and trial ids), plan (size relations, invalid
trials), trialdir (a trial's folder and status), worker (one trial in this process), compiles
(counting XLA compilations), run (the driver), ray_executor, results (CSV/JSONL), report, plots,
hparams (TensorBoard), log (the sweep log).
"""

import importlib
from typing import Any

# Imported on first use (PEP 562): a trial's worker process needs `worker` and `trialdir`, not the
# report's matplotlib and scipy, which cost it more than a second of start-up.
_EXPORTS = {
    "Dimension": "grid", "Sweep": "grid", "Trial": "grid", "expand": "grid", "load_sweep": "grid",
    "SweepError": "keys", "canonical_key": "keys", "parse_key": "keys", "set_value": "keys",
    "SweepOutcome": "outcome", "build_report": "report", "run_sweep": "run",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'cnn_jax.sweep' has no attribute {name!r}")
    return getattr(importlib.import_module(f"cnn_jax.sweep.{_EXPORTS[name]}"), name)
