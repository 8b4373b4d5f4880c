"""The entry points of training: `train_and_evaluate(config, workdir)` for one run and
`train_vmapped(configs, workdirs)` for same-shape runs trained as one vmapped program.

Both go through `_train`, in this order:

1. validate each config (`cnn_jax.config.validate_config`) and read each workdir without writing:
   a workdir of another config is refused, a finished run returns its results;
2. load the data set and check what needs it (sizes, image shape, a batch that splits over the
   devices): nothing is written to a workdir before its inputs are known to be good;
3. lock each workdir, write config.json, restore the newest intact checkpoint that every run
   holds (a corrupt newest one is reported in one line and the one before it is used), and
   truncate the logs to it;
4. `cnn_jax.train.loop.train`, then results.json and status.json per run.

results.json follows Nielsen's protocol: the test accuracy reported is the one at the epoch of
best validation accuracy (earliest on ties), next to the final one. A run stopped by
SIGINT/SIGTERM saves and ends `interrupted`; a run whose numbers turn NaN/inf ends `diverged`
with its metrics and last good checkpoint.

Reproducibility: the data order of an epoch is a pure function of (seed, epoch), dropout keys
fold in the step, and the running sums of the current epoch live in the checkpointed state, so a
run killed at any point and rerun with the same command ends with bitwise the same parameters
and metrics (on CPU) as an uninterrupted one: the rerun restarts from the last checkpoint,
recomputes the steps after it, and drops the log records of those steps first.

A vmapped group (`train_vmapped`) trains runs that differ only in `VALUE_KEYS` (values the
state holds as arrays) with one dispatch per step for all of them, which fills an accelerator
that one small CNN leaves mostly idle; each workdir ends as a lone run's. Its models are split
over the local devices (`devices.model_mesh`), each device training whole models; a run whose
numbers turn NaN/inf is diverged and the others go on.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections

from cnn_jax.config import check_loaded, validate_config, with_defaults
from cnn_jax.data import Dataset
from cnn_jax.errors import GroupError, WorkdirError
from cnn_jax.layers import formulations
from cnn_jax.network import Network
from cnn_jax.provenance import provenance
from cnn_jax.summary import format_table, shape_table
from cnn_jax.train import loop
from cnn_jax.train.checkpoints import Checkpointer, restore_newest_intact
from cnn_jax.train.devices import describe_devices, device_count, make_mesh, model_mesh, replicate
from cnn_jax.train.inputs import eval_set, load_for_config
from cnn_jax.train.interrupts import StopRequests
from cnn_jax.train.logs import MetricsLog, atomic_write_json, write_status
from cnn_jax.train.results import epoch_records, finished_results
from cnn_jax.train.state import create_state
from cnn_jax.train.workdir import WorkdirLock, check_workdir, prepare_workdir, workdir_failure

VALUE_KEYS = ("learning_rate", "l2", "momentum", "adam_b1", "adam_b2", "seed")


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str | Path, *, overwrite: bool = False,
    dataset: Dataset | None = None, callbacks: Sequence[loop.Callback] = (),
) -> dict[str, Any]:
    """Trains `config` in `workdir` (resuming if it holds a checkpoint); returns the results.

    Args:
      config: a training config; missing keys take the defaults of `cnn_jax.config.base_config`.
      overwrite: discard a previous run in `workdir` (else a workdir of another config is
        refused). A finished run whose config differs only by a larger `num_epochs` (constant
        schedule) is extended instead.
      dataset: an already loaded `cnn_jax.data.Dataset` (else the config's data set is loaded).
      callbacks: called after every chunk of steps with (step, steps in the chunk).
    Returns:
      results.json's content: status ('done', 'diverged' or 'interrupted'), the test accuracy at
      the best validation epoch, the final test accuracy, the best epoch, times, throughput,
      parameters and multiply-adds.
    Raises:
      ConfigError: a bad config (before anything is loaded or written).
      WorkdirError: the workdir holds another config, or cannot be written (e.g. disk full).
      DataError: the data set is missing or corrupt.
    """
    return _train([config], [workdir], stacked=False, overwrite=overwrite, dataset=dataset,
                  callbacks=callbacks)[0]


def train_vmapped(
    configs: Sequence[ml_collections.ConfigDict], workdirs: Sequence[str | Path], *,
    dataset: Dataset | None = None, overwrite: bool = False,
    callbacks: Sequence[loop.Callback] = (),
) -> list[dict[str, Any]]:
    """Trains `configs[i]` in `workdirs[i]`, all as one vmapped program; returns their results.

    Workdirs whose run is done keep their results; the others train (or resume) together.
    Raises what `train_and_evaluate` raises, and `GroupError` for configs that differ in more than
    `VALUE_KEYS`, or workdirs without a common checkpoint step.
    """
    if not configs or len(configs) != len(workdirs):
        raise ValueError(f"{len(configs)} configs for {len(workdirs)} workdirs")
    configs = [with_defaults(config) for config in configs]
    loads = dataset is None
    if len({program_key(config, data_from_config=loads) for config in configs}) > 1:
        raise GroupError(f"configs differ in more than {list(VALUE_KEYS)}: "
                         f"{_differing_keys(configs, loads)}")
    if len({Path(workdir).resolve() for workdir in workdirs}) < len(workdirs):
        raise GroupError("a workdir appears twice in the group")
    return _train(configs, workdirs, stacked=True, overwrite=overwrite, dataset=dataset,
                  callbacks=callbacks)


def program_key(config: ml_collections.ConfigDict, *, data_from_config: bool = True) -> str:
    """What configs must share to train as one vmapped program: every key but `VALUE_KEYS` (the
    seed counts for the synthetic data set, whose images depend on it, unless the data set is
    given rather than loaded from the config: `data_from_config=False`)."""
    values = with_defaults(config).to_dict()
    for key in VALUE_KEYS:
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


def _train(configs: Sequence[ml_collections.ConfigDict], workdirs: Sequence[str | Path], *,
           stacked: bool, overwrite: bool, dataset: Dataset | None,
           callbacks: Sequence[loop.Callback]) -> list[dict[str, Any]]:
    configs = [with_defaults(config) for config in configs]
    network = [validate_config(config) for config in configs][0]
    if any(not str(workdir).strip() for workdir in workdirs):
        raise WorkdirError("the workdir is empty: pass --workdir=FOLDER")
    workdirs = [Path(workdir) for workdir in workdirs]
    for workdir, config in zip(workdirs, configs, strict=True):
        check_workdir(workdir, config, overwrite=overwrite)
    results = [None if overwrite else finished_results(workdir, config)
               for workdir, config in zip(workdirs, configs, strict=True)]
    pending = [i for i, result in enumerate(results) if result is None]
    for workdir, result in zip(workdirs, results, strict=True):
        if result is not None and not stacked:
            print(f"{workdir}: already done (results.json); pass --overwrite to train again")
    if not pending:
        return results
    configs, workdirs = [configs[i] for i in pending], [workdirs[i] for i in pending]
    if dataset is None:
        dataset = load_for_config(configs[0])
    mesh = model_mesh(len(configs)) if stacked else make_mesh()
    check_loaded(configs[0], network, dataset, devices=1 if stacked else device_count(mesh))
    with contextlib.ExitStack() as stack:
        for workdir, config in zip(workdirs, configs, strict=True):
            stack.enter_context(WorkdirLock(workdir))
            prepare_workdir(workdir, config, overwrite=overwrite)
        stop = stack.enter_context(StopRequests())
        trained = _run(configs, workdirs, network, dataset, mesh, stacked, stop, callbacks)
    for i, result in zip(pending, trained, strict=True):
        results[i] = result
    return results


def build_group(runs: list[loop.Run], network: Network, dataset: Dataset, mesh: Any,
                stacked: bool) -> loop.Group:
    """The `loop.Group` that trains `runs` on `dataset`: the strategy and the formulations for
    this backend, and the data placed on the device(s) of `mesh`."""
    config = runs[0].config
    steps_per_epoch = len(dataset.train_labels) // config.batch_size
    backend = jax.default_backend()
    plans = network.plan(dataset.image_shape)
    devices = 1 if stacked else device_count(mesh)
    strategy = formulations.pick_strategy(config.strategy, backend,
                                          batch_size=config.batch_size // devices, plans=plans,
                                          conv=config.formulation.conv)
    choice = dict(**config.formulation.to_dict(), plans=plans, backend=backend, devices=devices)
    train_images, train_labels = replicate((dataset.train_images, dataset.train_labels), mesh)
    return loop.Group(
        runs=runs, network=network, stacked=stacked, mesh=mesh, train_images=train_images,
        train_labels=train_labels,
        val=eval_set(dataset.val_images, dataset.val_labels, config.eval_batch_size, mesh),
        test=eval_set(dataset.test_images, dataset.test_labels, config.eval_batch_size, mesh),
        steps_per_epoch=steps_per_epoch,
        chunk_steps=1 if strategy == "step" else min(config.log_every_steps, steps_per_epoch),
        train_formulation=formulations.choose(
            **choice, batch_size=config.batch_size // devices, training=True,
            scan=strategy == "scan"),
        eval_formulation=formulations.choose(
            **choice, batch_size=config.eval_batch_size, training=False))


def _run(configs: list[ml_collections.ConfigDict], workdirs: list[Path], network: Network,
         dataset: Dataset, mesh: Any, stacked: bool, stop: StopRequests,
         callbacks: Sequence[loop.Callback]) -> list[dict[str, Any]]:
    rows = shape_table(network, dataset.image_shape)
    runs: list[loop.Run] = []
    try:
        for workdir, config in zip(workdirs, configs, strict=True):
            runs.append(loop.Run(
                config=config, workdir=workdir,
                checkpointer=Checkpointer(workdir, keep=config.checkpoint_keep), log=None,
                history=[], data_key=jax.random.fold_in(jax.random.key(config.seed), 1)))
        group = build_group(runs, network, dataset, mesh, stacked)
        templates = [create_state(network, run.config, dataset.image_shape,
                                  group.steps_per_epoch) for run in runs]
        start, states = restore_newest_intact([run.checkpointer for run in runs], templates)
        for run in runs:
            run.log = MetricsLog(run.workdir, resume_step=start)
            if start is None:
                run.log.truncate_after(-1)
                run.log.write("shapes", 0, table=[row.as_dict() for row in rows])
            else:
                run.history = epoch_records(run.log.truncate_after(start))
        print(f"{dataset.describe()}\n{format_table(rows)}")
        where = f"devices: {describe_devices()}; "
        if stacked:
            where += f"{len(runs)} models in one vmapped program" + (
                f", split over {mesh.size} devices" if mesh is not None else "") + "; "
        config = group.config
        strategy = "step" if group.chunk_steps == 1 else "scan"
        print(where + f"strategy: {strategy}; formulation: {_describe(group.train_formulation)};"
              f" {group.steps_per_epoch} steps/epoch of {config.batch_size}")
        if start is not None:
            print(f"resuming {workdirs[0]} from step {start}" if len(runs) == 1
                  else f"resuming from step {start}")
        state = group.place(states)
        for run in runs:
            write_status(run.workdir, "running", step=start or 0, pid=os.getpid(),
                         **({"vmapped": True} if stacked else {}))
        programs, compile_seconds = {}, 0.0
        if (start or 0) < group.steps_per_epoch * config.num_epochs:
            programs, compile_seconds = group.compile(state)
        outcomes = loop.train(group, state, stop=stop, programs=programs,
                              compile_seconds=compile_seconds, callbacks=callbacks)
        totals = {"params": sum(r.params for r in rows), "macs": sum(r.macs for r in rows),
                  "provenance": provenance()}
        for run, outcome in zip(runs, outcomes, strict=True):
            outcome.update(totals, **({"vmapped_models": len(runs)} if stacked else {}))
            atomic_write_json(run.workdir / "results.json", outcome)
            write_status(run.workdir, outcome["status"],
                         **{k: outcome[k] for k in ("reason", "step") if k in outcome})
        return outcomes
    except OSError as error:  # disk full, workdir removed or made read-only meanwhile
        for workdir in workdirs:
            with contextlib.suppress(OSError):
                write_status(workdir, "failed", reason=str(error))
        raise workdir_failure(workdirs[0], error) from error
    finally:
        for run in runs:
            for resource in (run.checkpointer, run.log):
                if resource is not None:
                    with contextlib.suppress(OSError):
                        resource.close()


def _describe(formulation: formulations.Formulation) -> str:
    parts = f"{formulation.conv} conv, {formulation.pool} pool"
    if formulation.microbatches > 1:
        parts += f", {formulation.microbatches} micro-batches"
    return parts
