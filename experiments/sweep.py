"""Runs a hyper-parameter sweep; rerunning the same command resumes it.

    python -m experiments.sweep --config=configs/sweeps/filter_size.py --workdir=sweeps/filter
    python -m experiments.sweep --config=configs/sweeps/filter_size.py --workdir=sweeps/filter \
        --max_trials=4                    # run 4 trials now, the rest on the next run
    python -m experiments.sweep --config=configs/sweeps/filter_size.py --workdir=sweeps/filter \
        --parallel=2                      # two trials at a time, same results (default: 1)
    python -m experiments.sweep --config=configs/sweeps/lr_seed.py --workdir=sweeps/lr \
        --executor=vmap                   # same-shape trials as one vmapped program
    python -m experiments.sweep --config=configs/sweeps/full_product.py \
        --workdir=/shared/sweeps/full --executor=ray --ray_address=auto --gpus_per_trial=0.25

A sweep config with a `search` section (configs/sweeps/tiny_search.py, course_study.py) is an
Optuna search with early stopping instead of a grid (cnn_jax/sweep/search.py); it runs in this
process, and --promote=t0004,t0007 trains trials the pruner stopped on to the full epochs:

    python -m experiments.sweep --config=configs/sweeps/course_study.py --workdir=sweeps/study

Every trial's size relations go to the log and workdir/shapes.md before anything trains;
impossible trials are recorded as invalid. Results: workdir/results.csv, results.jsonl,
summary.csv, report.md (see cnn_jax/sweep). Exit codes: 0 finished (invalid, diverged or failed
trials included), 2 bad flags or sweep config, 130 interrupted (rerun to resume).
"""

import sys

from absl import flags

from cnn_jax import cli

CONFIG = cli.define_config_file("config", None, "Sweep config file (configs/sweeps/).")
WORKDIR = flags.DEFINE_string("workdir", None, "Folder of the sweep (one subfolder per trial).")
EXECUTOR = flags.DEFINE_enum(
    "executor", "auto", ["auto", "local", "vmap", "ray"],
    "Where trials run: 'local' one by one; 'vmap' same-shape trials as one vmapped program; "
    "'ray' as Ray tasks; 'auto': 'vmap' on GPU/TPU, 'local' on CPU.")
PARALLEL = flags.DEFINE_string(
    "parallel", "auto", "'local': trials at a time, each in its own worker process; 'auto': the "
    "measured winner (one at a time: two were not faster on 2 cores, BENCHMARKS.md).")
PIN_CPUS = flags.DEFINE_bool(
    "pin_cpus", False, "With --parallel > 1: each worker on its own share of the CPUs (less "
    "contention, but other numbers than a run on all CPUs: cnn_jax/sweep/parallel.py).")
VMAP_MODELS = flags.DEFINE_integer("vmap_models", 64, "'vmap': most models in one program.",
                                   lower_bound=1)
RAY_ADDRESS = flags.DEFINE_string(
    "ray_address", None, "Ray cluster ('auto', 'ray://host:10001'); unset: a local Ray instance.")
MAX_TRIALS = flags.DEFINE_integer("max_trials", None, "Run at most this many trials now.",
                                  lower_bound=1)
CPUS = flags.DEFINE_float("cpus_per_trial", 1, "Ray: CPUs reserved by each trial.",
                          lower_bound=0)
GPUS = flags.DEFINE_float("gpus_per_trial", 0, "Ray: GPUs per trial (0.25: four per GPU).",
                          lower_bound=0)
WORKING_DIR = flags.DEFINE_string(
    "ray_working_dir", None, "Ray: ship this folder's code to the workers (runtime_env).")
CACHE = flags.DEFINE_string(
    "compilation_cache", None, "JAX persistent compilation cache (default: workdir/jax_cache).")
REPORT = flags.DEFINE_bool("report", True, "Build report.md and the plots at the end.")
PROMOTE = flags.DEFINE_list(
    "promote", [], "Search sweeps: pruned trials (e.g. t0004) to train to the full epochs.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    del argv
    from cnn_jax.sweep import SweepError, run_sweep

    if "search" in CONFIG.value:
        _search()
    if PROMOTE.value:
        cli.fail("--promote is for sweep configs with a `search` section")
    options = {}
    if EXECUTOR.value == "ray":
        options = {"cpus_per_trial": CPUS.value, "gpus_per_trial": GPUS.value,
                   "working_dir": WORKING_DIR.value}
    try:
        outcome = run_sweep(CONFIG.value, WORKDIR.value, executor=EXECUTOR.value,
                            ray_address=RAY_ADDRESS.value, max_trials=MAX_TRIALS.value,
                            report=REPORT.value, compilation_cache=CACHE.value,
                            vmap_models=VMAP_MODELS.value, parallel=_parallel(),
                            pin_cpus=PIN_CPUS.value, **options)
    except SweepError as error:
        cli.fail(str(error))
    sys.exit(130 if outcome.interrupted else 0)


def _parallel() -> int | str:
    value = PARALLEL.value.strip().lower()
    if value == "auto":
        return value
    if not value.isdigit() or int(value) < 1:
        cli.fail(f"--parallel must be 'auto' or a whole number >= 1, got {PARALLEL.value!r}")
    return int(value)


def _search() -> None:
    from cnn_jax.sweep import SweepError
    from cnn_jax.sweep.search import run_search

    if EXECUTOR.value not in ("auto", "local"):
        cli.fail(f"a search runs its trials in this process, one after another: "
                 f"--executor={EXECUTOR.value} is for grids (use --executor=local)")
    try:
        outcome = run_search(CONFIG.value, WORKDIR.value, max_trials=MAX_TRIALS.value,
                             report=REPORT.value, compilation_cache=CACHE.value,
                             promote=tuple(PROMOTE.value))
    except SweepError as error:
        cli.fail(str(error))
    sys.exit(130 if outcome.interrupted else 0)


if __name__ == "__main__":
    cli.run(main)
