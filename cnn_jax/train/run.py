"""Training, top to bottom: `train_and_evaluate(config, workdir)` for one run,
`train_vmapped(configs, workdirs)` for same-shape runs trained as one vmapped program, and
`fit(experiment, hooks)`, the loop both run.

Before training (`_opened`):

1. validate each config (`cnn_jax.config.validate_config`) and read each workdir without writing:
   a workdir of another config is refused, a finished run returns its results;
2. load the data set and check what needs it (sizes, image shape, a batch that splits over the
   devices): nothing is written to a workdir before its inputs are known to be good;
3. lock each workdir, write config.json, `prepare` the `Experiment` from the newest intact
   checkpoint that every run holds (a corrupt newest one is reported in one line and the one
   before it is used), and truncate the logs to it.

Then `fit` trains with the hooks (`cnn_jax.train.hooks`: NaN checks, metrics, checkpoints,
progress, plots, interrupts), and results.json and status.json are written per run.

results.json follows Nielsen's protocol: the test accuracy reported is the one at the epoch of
best validation accuracy (earliest on ties), next to the final one. A run stopped by
SIGINT/SIGTERM saves and ends `interrupted`; a run whose numbers turn NaN/inf ends `diverged`
with its metrics and last good checkpoint, and the others of its group go on.

Reproducibility: the data order of an epoch is a pure function of (seed, epoch), dropout keys
fold in the step, and the running sums of the current epoch live in the checkpointed state, so a
run killed at any point and rerun with the same command ends with bitwise the same parameters
and metrics (on CPU) as an uninterrupted one: the rerun restarts from the last checkpoint,
recomputes the steps after it, and drops the log records of those steps first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from cnn_jax.config import (
    PER_RUN_KEYS,
    check_loaded,
    load_for_config,
    validate_config,
    with_defaults,
)
from cnn_jax.data import Dataset
from cnn_jax.errors import GroupError, WorkdirError
from cnn_jax.provenance import describe_devices, provenance
from cnn_jax.summary import format_table, shape_table
from cnn_jax.train import results
from cnn_jax.train.experiment import Experiment, Placement, prepare
from cnn_jax.train.hooks import (
    Checkpoints,
    Divergence,
    Hook,
    Interrupts,
    Metrics,
    Plots,
    ProgressBar,
)
from cnn_jax.train.interrupts import StopRequests
from cnn_jax.train.logs import atomic_write_json, write_status
from cnn_jax.train.workdir import WorkdirLock, check_workdir, prepare_workdir, workdir_failure


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str | Path, *, overwrite: bool = False,
    dataset: Dataset | None = None, hooks: Sequence[Hook] = (),
) -> dict[str, Any]:
    """Trains `config` in `workdir` (resuming if it holds a checkpoint); returns the results.

    Args:
      config: a training config; missing keys take the defaults of `cnn_jax.config.schema_defaults`.
      overwrite: discard a previous run in `workdir` (else a workdir of another config is
        refused). A finished run whose config differs only by a larger `num_epochs` (constant
        schedule) is extended instead.
      dataset: an already loaded `cnn_jax.data.Dataset` (else the config's data set is loaded).
      hooks: more `cnn_jax.train.hooks.Hook`s, after the run's own.
    Returns:
      results.json's content: status ('done', 'diverged' or 'interrupted'), the test accuracy at
      the best validation epoch, the final test accuracy, the best epoch, times, throughput,
      parameters and multiply-adds.
    Raises:
      ConfigError: a bad config (before anything is loaded or written).
      WorkdirError: the workdir holds another config, or cannot be written (e.g. disk full).
      DataError: the data set is missing or corrupt.
    """
    with _opened([config], [workdir], vmapped=False, overwrite=overwrite,
                 dataset=dataset) as runs:
        if runs.experiment is not None:
            runs.finish(fit(runs.experiment, [*runs.hooks, *hooks]))
        return runs.results[0]


def train_vmapped(
    configs: Sequence[ml_collections.ConfigDict], workdirs: Sequence[str | Path], *,
    dataset: Dataset | None = None, overwrite: bool = False, hooks: Sequence[Hook] = (),
) -> list[dict[str, Any]]:
    """Trains `configs[i]` in `workdirs[i]`, all as one vmapped program; returns their results.

    One dispatch per step trains every model, which fills an accelerator that one small CNN
    leaves mostly idle; the models are split over the local devices (`devices.model_mesh`), and
    each workdir ends as a lone run's. Workdirs whose run is done keep their results; the others
    train (or resume) together. Raises what `train_and_evaluate` raises, and `GroupError` for
    configs that differ in more than `PER_RUN_KEYS`, or workdirs without a common checkpoint step.
    """
    if not configs or len(configs) != len(workdirs):
        raise ValueError(f"{len(configs)} configs for {len(workdirs)} workdirs")
    configs = [with_defaults(config) for config in configs]
    loads = dataset is None
    if len({program_key(config, data_from_config=loads) for config in configs}) > 1:
        raise GroupError(f"configs differ in more than {list(PER_RUN_KEYS)}: "
                         f"{_differing_keys(configs, loads)}")
    if len({Path(workdir).resolve() for workdir in workdirs}) < len(workdirs):
        raise GroupError("a workdir appears twice in the group")
    with _opened(configs, workdirs, vmapped=True, overwrite=overwrite, dataset=dataset) as runs:
        if runs.experiment is not None:
            runs.finish(fit(runs.experiment, [*runs.hooks, *hooks]))
        return runs.results


def fit(experiment: Experiment, hooks: Sequence[Hook] = (), *, until: int | None = None
        ) -> list[dict[str, Any] | None]:
    """Trains `experiment` from its step to `until` (default: the end of its last epoch);
    returns each run's outcome (None for a run paused at `until`).

    Each epoch runs its chunks of steps, aligned to multiples of the chunk length within the
    epoch so that a resumed run runs the same programs on the same batches; the hooks hear of
    each chunk. An epoch's end evaluates the validation and test sets, appends each run's epoch
    record, resets the running sums and tells the hooks. A hook's `stop_reason` (SIGINT) ends
    every run still training `interrupted` at the next chunk boundary.
    """
    ex, spe = experiment, experiment.steps_per_epoch
    total = spe * ex.config.num_epochs
    until = total if until is None else min(until, total)
    if ex.step < until and not ex.programs:
        ex.compile()
    reason = None
    while ex.step < until and ex.training():
        epoch, batch = divmod(ex.step, spe)
        first, started, orders = batch, time.perf_counter(), ex.orders(epoch)
        for num_steps in _chunk_lengths(batch, min(spe, until - epoch * spe), ex.chunk_steps):
            reason = next((r for r in (hook.stop_reason() for hook in hooks) if r), None)
            if reason or not ex.training():
                break
            ex.advance(ex.program(num_steps)(ex.state, ex.train_images, ex.train_labels, orders,
                                             jnp.int32(batch)), num_steps)
            batch += num_steps
            _tell(hooks, ex, "on_chunk", epoch, ex.step, num_steps)
        jax.block_until_ready(ex.state)
        if reason or batch < spe or not ex.training():
            break
        images = (spe - first) * ex.config.batch_size
        _end_epoch(ex, hooks, epoch, time.perf_counter() - started, images)
    if reason and ex.training():
        ex.check_finite()
        _flush(hooks, ex)
        _end(ex, hooks, {index: results.summarize(ex.history[index], status="interrupted",
                                                  step=ex.step) for index in ex.training()})
    elif ex.step >= total:
        _end(ex, hooks, {index: _done(ex, index) for index in ex.training()})
    return list(ex.outcomes)


def _chunk_lengths(batch: int, end: int, chunk: int) -> Iterator[int]:
    """The lengths of the chunks that cover batches [batch, end) of an epoch, each ending on a
    multiple of `chunk` (or at `end`)."""
    while batch < end:
        num_steps = min(chunk - batch % chunk, end - batch)
        yield num_steps
        batch += num_steps


def _tell(hooks: Sequence[Hook], ex: Experiment, event: str, *args: Any) -> None:
    """Calls `event` of every hook in order; a run a hook finds diverged is told to all."""
    for hook in hooks:
        getattr(hook, event)(ex, *args)
        _flush(hooks, ex)


def _flush(hooks: Sequence[Hook], ex: Experiment) -> None:
    """Tells every hook of the runs found diverged since the last call."""
    while ex.diverged:
        index, step, reason = ex.diverged.pop(0)
        for hook in hooks:
            hook.on_diverged(ex, index, step, reason)


def _end_epoch(ex: Experiment, hooks: Sequence[Hook], epoch: int, seconds: float,
               images: int) -> None:
    """Evaluates every run still training, appends its epoch record, resets the sums."""
    losses, accuracies = ex.epoch_means()
    val_loss, val_accuracy = ex.evaluate(ex.state.params, ex.val)
    test_loss, test_accuracy = ex.evaluate(ex.state.params, ex.test)
    extra = {}
    if ex.placement.vmapped:
        extra["model_images_per_second"] = len(ex.configs) * images / max(seconds, 1e-9)
    records = {}
    for index in ex.training():
        records[index] = {
            "epoch": epoch + 1, "train_loss": float(losses[index]),
            "train_accuracy": float(accuracies[index]),
            "val_loss": results.none_if_nan(float(val_loss[index])),
            "val_accuracy": results.none_if_nan(float(val_accuracy[index])),
            "test_loss": results.none_if_nan(float(test_loss[index])),
            "test_accuracy": results.none_if_nan(float(test_accuracy[index])),
            "epoch_time_s": seconds, "images_per_second": images / max(seconds, 1e-9), **extra,
        }
        ex.history[index].append(records[index])
    ex.reset_epoch_sums()
    _tell(hooks, ex, "on_epoch_end", epoch, ex.step, records)


def _done(ex: Experiment, index: int) -> dict[str, Any]:
    outcome = results.summarize(ex.history[index], status="done", step=ex.step)
    outcome.update(compile_time_s=ex.compile_seconds)
    if ex.placement.vmapped and ex.history[index]:
        outcome["model_images_per_second"] = ex.history[index][-1].get("model_images_per_second")
    return outcome


def _end(ex: Experiment, hooks: Sequence[Hook], outcomes: dict[int, dict[str, Any]]) -> None:
    _tell(hooks, ex, "on_end", ex.step, outcomes)
    for index, outcome in outcomes.items():
        ex.outcomes[index] = outcome


@dataclasses.dataclass
class _Runs:
    """Runs opened for training: their results so far (None: to train), the experiment of the
    ones to train (None if every run is done) and their hooks."""

    results: list[dict[str, Any] | None]
    pending: list[int]
    workdirs: list[Path]
    experiment: Experiment | None = None
    hooks: list[Hook] = dataclasses.field(default_factory=list)
    totals: dict[str, Any] = dataclasses.field(default_factory=dict)

    def finish(self, outcomes: list[dict[str, Any]]) -> None:
        """results.json and status.json of every run trained."""
        vmapped = self.experiment.placement.vmapped
        for index, workdir, outcome in zip(self.pending, self.workdirs, outcomes, strict=True):
            outcome.update(self.totals, **({"vmapped_models": len(outcomes)} if vmapped else {}))
            atomic_write_json(workdir / "results.json", outcome)
            write_status(workdir, outcome["status"],
                         **{k: outcome[k] for k in ("reason", "step") if k in outcome})
            self.results[index] = outcome


@contextlib.contextmanager
def _opened(configs: Sequence[ml_collections.ConfigDict], workdirs: Sequence[str | Path], *,
            vmapped: bool, overwrite: bool, dataset: Dataset | None) -> Iterator[_Runs]:
    """Checks the configs and workdirs, loads the data, then locks the workdirs of the runs to
    train and prepares their experiment and hooks (closed on exit); an OSError meanwhile marks
    them `failed` and is raised as `WorkdirError`."""
    configs = [with_defaults(config) for config in configs]
    network = [validate_config(config) for config in configs][0]
    if any(not str(workdir).strip() for workdir in workdirs):
        raise WorkdirError("the workdir is empty: pass --workdir=FOLDER")
    workdirs = [Path(workdir) for workdir in workdirs]
    for workdir, config in zip(workdirs, configs, strict=True):
        check_workdir(workdir, config, overwrite=overwrite)
    done = [None if overwrite else results.finished_results(workdir, config)
            for workdir, config in zip(workdirs, configs, strict=True)]
    pending = [i for i, result in enumerate(done) if result is None]
    for workdir, result in zip(workdirs, done, strict=True):
        if result is not None and not vmapped:
            print(f"{workdir}: already done (results.json); pass --overwrite to train again")
    configs, workdirs = [configs[i] for i in pending], [workdirs[i] for i in pending]
    runs = _Runs(done, pending, workdirs)
    if not pending:
        yield runs
        return
    dataset = load_for_config(configs[0]) if dataset is None else dataset
    placement = Placement.default(len(configs), vmapped)
    check_loaded(configs[0], network, dataset, devices=placement.batch_devices)
    with contextlib.ExitStack() as stack:
        for workdir, config in zip(workdirs, configs, strict=True):
            stack.enter_context(WorkdirLock(workdir))
            prepare_workdir(workdir, config, overwrite=overwrite)
        stop = stack.enter_context(StopRequests())
        try:
            checkpoints = Checkpoints(workdirs, configs)
            stack.callback(_close, checkpoints)
            runs.experiment = ex = prepare(configs, dataset, placement=placement,
                                           resume=checkpoints.restore, network=network)
            rows = shape_table(network, dataset.image_shape)
            metrics = Metrics(workdirs, ex, rows)
            stack.callback(_close, metrics)
            runs.totals = {"params": sum(r.params for r in rows),
                           "macs": sum(r.macs for r in rows), "provenance": provenance()}
            print(f"{dataset.describe()}\n{format_table(rows)}")
            print(f"devices: {describe_devices()}; {ex.describe()}")
            if ex.resumed:
                print(f"resuming {workdirs[0]} from step {ex.step}" if len(workdirs) == 1
                      else f"resuming from step {ex.step}")
            for workdir in workdirs:
                write_status(workdir, "running", step=ex.step, pid=os.getpid(),
                             **({"vmapped": True} if vmapped else {}))
            if ex.step < ex.steps_per_epoch * ex.config.num_epochs:
                ex.compile()
            progress = ProgressBar(ex)
            stack.callback(_close, progress)
            runs.hooks = [Divergence(), metrics, checkpoints, progress, Plots(workdirs),
                          Interrupts(stop)]
            yield runs
        except OSError as error:  # disk full, workdir removed or made read-only meanwhile
            for workdir in workdirs:
                with contextlib.suppress(OSError):
                    write_status(workdir, "failed", reason=str(error))
            raise workdir_failure(workdirs[0], error) from error


def _close(hook: Hook) -> None:
    with contextlib.suppress(OSError):
        hook.close()


def program_key(config: ml_collections.ConfigDict, *, data_from_config: bool = True) -> str:
    """What configs must share to train as one vmapped program: every key but `PER_RUN_KEYS`
    (the seed counts for the synthetic data set, whose images depend on it, unless the data set
    is given rather than loaded from the config: `data_from_config=False`)."""
    values = with_defaults(config).to_dict()
    for key in PER_RUN_KEYS:
        if not (key == "seed" and values["dataset"] == "synthetic" and data_from_config):
            values.pop(key)
    return json.dumps(values, sort_keys=True, default=str)


def _differing_keys(configs: list[ml_collections.ConfigDict], loads: bool) -> list[str]:
    flat = [_flatten(json.loads(program_key(config, data_from_config=loads)))
            for config in configs]
    keys = set().union(*flat)
    return sorted(key for key in keys
                  if len({json.dumps(f.get(key), default=str) for f in flat}) > 1)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
