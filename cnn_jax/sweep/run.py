"""`run_sweep(sweep_config, workdir)`: plan every trial, then run the ones not finished yet.

1. Expand the grid (`grid.py`) and compute every trial's per-layer size relations (`plan.py`):
   into the sweep log and workdir/shapes.md; impossible trials are recorded as `invalid`.
2. Write workdir/sweep.json (the manifest: dimensions, seeds, trials) and one folder per trial.
3. Run the pending, running, interrupted and failed trials in grid order, in this process
   (`executor='local'`; with `parallel` > 1 in that many worker processes, `parallel.py`, where
   'auto' follows the measured winner), in this process with same-shape
   trials stacked into one `jax.vmap`-ed program (`executor='vmap'`,
   `cnn_jax.train.train_vmapped`), or as Ray tasks (`executor='ray'`); 'auto' is 'vmap' on an
   accelerator and 'local' on CPU (see `pick_executor`). A sweep-level
   progress bar; results.csv/results.jsonl are rewritten after every trial, the report at the end.

Rerunning the same command skips done, diverged and invalid trials and resumes the others from
their checkpoints (also a `dead` one: marked running by a sweep that was killed). A sweep holds
workdir/.lock while it runs: a second sweep in the same workdir is refused at once.
The persistent JAX compilation cache lives in workdir/jax_cache.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import ml_collections
from tqdm.auto import tqdm

from cnn_jax.errors import SweepError
from cnn_jax.sweep import results as tables
from cnn_jax.sweep import trialdir
from cnn_jax.sweep.grid import distinct, load_sweep
from cnn_jax.sweep.log import SweepLog
from cnn_jax.sweep.outcome import SweepOutcome, cache_dir, config_record, finish
from cnn_jax.sweep.parallel import available_cpus, cpu_shares, pick_workers, run_parallel
from cnn_jax.sweep.plan import TrialPlan, plan_all, write_shapes
from cnn_jax.train.logs import atomic_write_json
from cnn_jax.train.workdir import WorkdirLock, check_writable, workdir_failure

CONSOLE_TABLES = 12  # more configurations than this: the tables go to the log file only


EXECUTORS = ("auto", "local", "vmap", "ray")
VMAP_MODELS = 64  # most models in one vmapped program (memory grows with it)


def pick_executor(executor: str, backend: str | None = None) -> str:
    """'auto' → 'vmap' on GPU/TPU (one small CNN leaves an accelerator mostly idle), 'local' on
    CPU (a vmapped step of M models costs about M single steps there: nothing to gain)."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {list(EXECUTORS)}, got {executor!r}")
    if executor != "auto":
        return executor
    import jax

    return "local" if (backend or jax.default_backend()) == "cpu" else "vmap"


def vmap_groups(plans: list[TrialPlan], max_models: int) -> list[list[TrialPlan]]:
    """`plans` in groups that can share one vmapped program (same `program_key`), in order of
    first appearance, at most `max_models` per group."""
    from cnn_jax.train import program_key

    if max_models < 1:
        raise ValueError(f"vmap_models must be >= 1, got {max_models}")
    by_key: dict[str, list[list[TrialPlan]]] = {}
    groups: list[list[TrialPlan]] = []
    for plan in plans:
        chunks = by_key.setdefault(program_key(plan.trial.config), [])
        if not chunks or len(chunks[-1]) == max_models:
            chunks.append([])
            groups.append(chunks[-1])
        chunks[-1].append(plan)
    return groups


def _manifest(sweep, plans: list[TrialPlan], sweep_config) -> dict[str, Any]:
    return {
        "name": sweep.name, "dimensions": [d.as_dict() for d in sweep.dimensions],
        "seeds": list(sweep.seeds), "trials": [p.trial.record() for p in plans],
        "input_shape": list(plans[0].input_shape) if plans else None,
        "updated": time.time(),
        "sweep_config": config_record(sweep_config),
    }


def run_sweep(sweep_config: ml_collections.ConfigDict, workdir: str | Path, *,
              executor: str = "local", ray_address: str | None = None,
              max_trials: int | None = None, report: bool = True, echo: bool = True,
              compilation_cache: str | None = None, vmap_models: int = VMAP_MODELS,
              parallel: int | str = "auto", pin_cpus: bool = False,
              **ray_options: Any) -> SweepOutcome:
    """Plans and runs the sweep in `workdir` (see the module docstring); returns the statuses.

    Args:
      executor: 'local' (trials back to back in this process), 'vmap' (same-shape trials as one
        vmapped program, up to `vmap_models` per program), 'ray', or 'auto' (`pick_executor`).
      ray_address: the Ray cluster ('auto', 'ray://host:10001'); None starts a local one.
      max_trials: run at most this many trials now (the rest stay pending for a rerun).
      parallel: 'local' only: trials at a time, each in its own worker process; 'auto'
        (`parallel.pick_workers`): the measured winner, one at a time.
      pin_cpus: with parallel > 1, each worker on its own share of the CPUs (faster, other
        numbers than a run on all of them: see `cnn_jax.sweep.parallel`).
      compilation_cache: JAX's persistent compilation cache (default workdir/jax_cache); one
        folder shared by several sweeps lets them reuse each other's programs.
      ray_options: cpus_per_trial, gpus_per_trial, working_dir (see `ray_executor`).
    """
    executor = pick_executor(executor)
    if executor == "vmap" and vmap_models < 1:
        raise ValueError(f"vmap_models must be >= 1, got {vmap_models}")
    if not str(workdir).strip():
        raise SweepError("the workdir is empty: pass --workdir=FOLDER")
    workdir = Path(workdir)
    # Everything that can be checked before the workdir is touched: that it can be written, the
    # grid, every trial's shapes, the trial folders of an earlier run, and (in this process) the
    # data sets; then the sweep's lock (a second sweep in this workdir is refused at once).
    check_writable(workdir)
    sweep, plans, duplicates = _plan(sweep_config, workdir)
    if plans and not any(plan.valid for plan in plans):
        raise SweepError(f"all {len(plans)} trials are impossible, nothing to train (e.g. "
                         f"{plans[0].trial.id}: {plans[0].reason}); see the size tables of "
                         f"`python -m experiments.shapes --config=<this sweep config>`")
    with WorkdirLock(workdir, kind="sweep"):
        return _run_locked(sweep, plans, duplicates, sweep_config, workdir, executor=executor,
                           ray_address=ray_address, max_trials=max_trials, report=report,
                           echo=echo, cache=cache_dir(workdir, compilation_cache),
                           vmap_models=vmap_models, parallel=parallel, pin_cpus=pin_cpus,
                           ray_options=ray_options)


def _run_locked(sweep, plans: list[TrialPlan], duplicates: dict[str, str], sweep_config,
                workdir: Path, *, executor: str, ray_address: str | None,
                max_trials: int | None, report: bool, echo: bool, cache: str,
                vmap_models: int, parallel: int | str, pin_cpus: bool,
                ray_options: dict[str, Any]) -> SweepOutcome:
    if executor != "ray":
        from cnn_jax.sweep.worker import data_key, dataset_for

        for plan in {data_key(p.trial.config): p for p in plans if p.valid}.values():
            dataset_for(plan.trial.config)
    ray_session = None
    if executor == "ray":  # before JAX does anything in this process
        from cnn_jax.sweep import ray_executor

        ray_session = ray_executor.connect(ray_address, ray_options.get("working_dir"))
    try:
        try:
            log = SweepLog(Path(workdir) / "sweep.log", echo=echo)
            statuses = _prepare(sweep, plans, duplicates, sweep_config, workdir, log, executor)
        except OSError as error:  # e.g. trial folders left read-only
            raise workdir_failure(workdir, error) from None
        todo = [p for p in plans if statuses[p.trial.id] not in trialdir.FINISHED]
        skipped = len(plans) - len(todo)
        todo = todo if max_trials is None else todo[:max_trials]
        log.write(f"{skipped} trials finished or invalid already; running {len(todo)}")
        tables.write_results(workdir)
        groups = [[plan] for plan in todo] if executor != "vmap" else vmap_groups(
            todo, vmap_models)
        if executor == "vmap":
            shared = sum(len(group) for group in groups if len(group) > 1)
            log.write(f"{len(todo)} trials in {len(groups)} programs: {shared} of them in "
                      f"{sum(len(group) > 1 for group in groups)} vmapped groups (at most "
                      f"{vmap_models} models each)")
        workers = 1
        if executor == "local":
            workers = pick_workers(parallel, len(groups))
            if workers > 1 and pin_cpus:
                shares = cpu_shares(available_cpus(), workers)
                log.write(f"{workers} trials at a time, each in a worker process pinned to CPUs "
                          + " / ".join(",".join(map(str, share)) for share in shares))
            elif workers > 1:
                log.write(f"{workers} trials at a time, each in a worker process on all "
                          f"{len(available_cpus())} CPUs")
        ran, interrupted = _execute(groups, workdir, statuses, log, ray_session, skipped,
                                    cache, echo, ray_options, workers=workers, pin_cpus=pin_cpus)
    finally:
        if ray_session is not None:
            ray_session.close()
    return finish(workdir, log, statuses, ran, interrupted, report=report)


def _plan(sweep_config, workdir: Path):
    """(sweep, plans of its distinct trials, {duplicate id: kept id}); raises `SweepError` for a
    bad grid or trial folders of another sweep config. Writes nothing."""
    sweep = load_sweep(sweep_config)
    trials, duplicates = distinct(sweep.trials())
    plans = plan_all(trials, sweep_config.get("input_shape", None))
    for plan in plans:
        trialdir.check_config(workdir, plan)
    return sweep, plans, duplicates


def _prepare(sweep, plans: list[TrialPlan], duplicates: dict[str, str], sweep_config,
             workdir: Path, log: SweepLog, executor: str) -> dict[str, str]:
    """Logs the size tables, writes the manifest and the trial folders; returns the statuses."""
    trials = [plan.trial for plan in plans]
    seeds = len(sweep.seeds)
    log.write(f"sweep {sweep.name or workdir.name}: {len(trials)} trials "
              f"({len(trials) // max(seeds, 1)} configurations × {seeds} "
              f"seed{'s' if seeds != 1 else ''}) in {workdir}; executor {executor}")
    if not sweep.dimensions:
        log.write(f"config.axes is empty: every trial is the base config, once per seed "
                  f"({len(trials)} trial{'s' if len(trials) != 1 else ''})")
    for dropped, kept in duplicates.items():
        log.write(f"{dropped}: not trained, the same network and training as {kept}")
    text = write_shapes(plans, workdir / "shapes.md", sweep.name or workdir.name)
    groups = len({p.trial.group for p in plans})
    log.write(text, console=groups <= CONSOLE_TABLES)
    if groups > CONSOLE_TABLES:
        log.write(f"size tables of {groups} configurations: {workdir / 'shapes.md'}")
    atomic_write_json(workdir / "sweep.json",
                      {**_manifest(sweep, plans, sweep_config), "duplicates": duplicates})
    statuses = {p.trial.id: trialdir.prepare(workdir, p) for p in plans}
    for trial_id, status in statuses.items():
        if status == trialdir.DEAD:
            log.write(f"{trial_id}: {trialdir.dead_reason(trialdir.trial_dir(workdir, trial_id))}"
                      f"; resuming it from its last checkpoint")
    for plan in plans:
        if not plan.valid:
            log.write(f"{plan.trial.id}: invalid: {plan.reason}", console=False)
    return statuses


def _execute(groups, workdir, statuses, log, ray_session, skipped, cache, echo, ray_options, *,
             workers: int = 1, pin_cpus: bool = False):
    """Runs the trials of `groups` with the sweep's progress bar; returns (ran, interrupted)."""
    # On a terminal a progress bar; redirected, only the log's line per trial (no carriage
    # returns in the file).
    bar = tqdm(total=len(statuses), initial=skipped, desc="sweep", unit="trial", position=0,
               dynamic_ncols=True, file=sys.stderr, disable=not (echo and _is_tty(sys.stderr)))
    ran: list[str] = []

    def finished(outcome: dict[str, Any]) -> None:
        statuses[outcome["id"]] = outcome["status"]
        ran.append(outcome["id"])
        result = outcome.get("results", {})
        accuracy = result.get("test_accuracy_at_best_val")
        detail = (f"test accuracy {accuracy:.4f}" if accuracy is not None
                  else result.get("reason", ""))
        if outcome.get("compiles") is not None:
            detail += f" ({outcome['compiles']} programs compiled)"
        log.write(f"{outcome['id']}: {outcome['status']} {detail}")
        tables.write_results(workdir)
        bar.update(1)
        if accuracy is not None:
            bar.set_postfix(last=outcome["id"], acc=f"{accuracy:.4f}", refresh=False)

    todo = [plan for group in groups for plan in group]
    try:
        if ray_session is not None:
            interrupted = ray_session.run(todo, workdir, finished, cache, **ray_options)
        elif workers > 1:
            interrupted = run_parallel(todo, workdir, finished, cache, workers,
                                       pin_cpus=pin_cpus)
        else:
            interrupted = _run_local(groups, workdir, finished, cache)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    return ran, interrupted


def _is_tty(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", None) and stream.isatty())


def _run_local(groups: list[list[TrialPlan]], workdir: Path, finished, cache: str) -> bool:
    """Groups back to back in this process (sharing data and compiled programs): a group of one
    trial trains alone, a larger one as one vmapped program. SIGINT or SIGTERM stops the sweep:
    during a group, its trials save checkpoints and end `interrupted`; between groups, before
    the next one starts."""
    from cnn_jax.compilation_cache import enable_compilation_cache
    from cnn_jax.sweep.worker import run_group, run_trial
    from cnn_jax.train.interrupts import StopRequests

    enable_compilation_cache(cache)
    with StopRequests() as stop:
        for group in groups:
            if stop.requested:
                return True
            directories = [trialdir.trial_dir(workdir, plan.trial.id) for plan in group]
            if len(group) == 1:
                outcomes = [run_trial(directories[0], group[0].trial.config)]
            else:
                outcomes = run_group(directories, [plan.trial.config for plan in group])
            for outcome in outcomes:
                finished(outcome)
            if any(outcome["status"] == "interrupted" for outcome in outcomes):
                return True
    return stop.requested
