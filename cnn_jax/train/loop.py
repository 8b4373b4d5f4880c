"""`train_and_evaluate(config, workdir)`: the one training function of the project.

The script, the sweeps, the benchmarks and the tests all call it. It

* validates the config before loading data or compiling (`ConfigError`);
* refuses a workdir that holds another config or is in use by another run, and resumes from
  the workdir's last checkpoint (a workdir whose run is done just returns its results);
* evaluates on the validation and test sets every epoch; results.json follows Nielsen's
  protocol: the test accuracy reported is the one at the epoch of best validation accuracy
  (earliest on ties), next to the final one;
* checks the loss, the parameters and the optimizer state for NaN/inf every
  `config.nan_check_every` steps, at every epoch end and before every checkpoint: a diverged run
  stops with status 'diverged', keeping its metrics and its last good checkpoint (a non-finite
  state is never saved);
* stops cleanly on SIGINT/SIGTERM after saving a checkpoint (status 'interrupted');
* writes metrics.jsonl (the shape table first), TensorBoard events, checkpoints, plots,
  status.json and results.json, each appended or replaced atomically.

The loop over epochs and chunks itself is `cnn_jax.train.training_loop.TrainingLoop` (shared
with `cnn_jax.train.vmapped`); this module's `SingleRun` fills it in for one model, and
`cnn_jax.train.run_summary` turns the log into results.json.

Reproducibility: the data order of an epoch is a pure function of (seed, epoch), dropout keys
fold in the step, and the running sums of the current epoch live in the checkpointed state, so a
run killed at any point and rerun with the same command ends with bitwise the same parameters
and metrics (on CPU) as an uninterrupted one: the rerun restarts from the last checkpoint,
recomputes the steps after it, and drops the log records of those steps first. Fused ('scan')
chunks of steps are aligned to multiples of the chunk length within the epoch, so a resumed run
runs the same programs on the same batches.

Fault injection (for tests only): with the environment variable
`CNN_JAX_FAULT_AFTER_STEPS=N`, the process sends itself `CNN_JAX_FAULT_SIGNAL` (default SIGKILL;
SIGTERM or SIGINT to test the clean stop) right after step N has been computed and its log
record and checkpoint (if any is due at N) have been written — a deterministic stand-in for a
kill at an arbitrary point. It fires only in a process that runs step N, so the rerun of the
same command goes on.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import jax
import ml_collections

from cnn_jax.config import ConfigError, validate_config, with_defaults
from cnn_jax.summary import format_table, shape_table
from cnn_jax.train import steps as compiled
from cnn_jax.train.checkpoints import Checkpointer
from cnn_jax.train.devices import describe_devices, device_count, make_mesh, replicate
from cnn_jax.train.inputs import EvalSet, eval_set, load_for_config
from cnn_jax.train.interrupts import StopRequests
from cnn_jax.train.logs import (
    MetricsLog,
    atomic_write_json,
    read_jsonl,
    write_status,
)
from cnn_jax.train.progress import Progress
from cnn_jax.train.run_summary import (
    epoch_records,
    finish_run,
    finished_results,
    none_if_nan,
    selection_score,
    summarize,
)
from cnn_jax.train.state import TrainState, create_state, reset_epoch_sums
from cnn_jax.train.training_loop import (
    Diverged,
    RunContext,
    TrainingLoop,
    jitted_epoch_order,
    state_is_finite,
)
from cnn_jax.train.workdir import WorkdirLock, prepare_workdir, workdir_failure


def pick_strategy(strategy: str) -> str:
    """'auto' → 'step' (a jitted step per batch) on CPU, 'scan' (fused steps) elsewhere."""
    if strategy != "auto":
        return strategy
    return "step" if jax.default_backend() == "cpu" else "scan"


def train_and_evaluate(
    config: ml_collections.ConfigDict, workdir: str | Path, *, overwrite: bool = False,
    dataset: Any = None,
) -> dict[str, Any]:
    """Trains `config` in `workdir` (resuming if it holds a checkpoint); returns the results.

    Args:
      config: a training config; missing keys take the defaults of `cnn_jax.config.base_config`.
      overwrite: discard a previous run in `workdir` (else a workdir of another config is
        refused).
      dataset: an already loaded `cnn_jax.data.Dataset` (else the config's data set is loaded).
    Returns:
      results.json's content: status ('done', 'diverged' or 'interrupted'), the test accuracy at
      the best validation epoch, the final test accuracy, the best epoch, times, throughput,
      parameters and multiply-adds.
    Raises:
      ConfigError: a bad config (before anything is loaded or written).
      WorkdirError: the workdir holds another config, or cannot be written (e.g. disk full).
      cnn_jax.data.DataError: the data set is missing or corrupt.
    """
    workdir = Path(workdir)
    config = with_defaults(config)
    validate_config(config, dataset=dataset)
    with WorkdirLock(workdir):
        prepare_workdir(workdir, config, overwrite=overwrite)
        finished = finished_results(workdir)
        if finished is not None:
            print(f"{workdir}: already done (results.json); pass --overwrite to train again")
            return finished
        with StopRequests() as stop:
            return _run(config, workdir, dataset, stop)


def _run(config: ml_collections.ConfigDict, workdir: Path, dataset: Any,
         stop: StopRequests) -> dict[str, Any]:
    if dataset is None:
        dataset = load_for_config(config)
    network = validate_config(config, dataset=dataset)
    mesh = make_mesh()
    devices = device_count(mesh)
    if config.batch_size % devices:
        raise ConfigError("batch_size", config.batch_size,
                          f"a multiple of the number of devices ({devices})")
    steps_per_epoch = len(dataset.train_labels) // config.batch_size
    strategy = pick_strategy(config.strategy)
    chunk_steps = 1 if strategy == "step" else min(config.log_every_steps, steps_per_epoch)
    rows = shape_table(network, dataset.image_shape)

    checkpointer = log = None
    try:
        checkpointer = Checkpointer(workdir, keep=config.checkpoint_keep)
        restored_step = checkpointer.latest_step()
        log = MetricsLog(workdir, resume_step=restored_step)
        state = create_state(network, config, dataset.image_shape, steps_per_epoch)
        if restored_step is not None:
            state = checkpointer.restore(state, restored_step)
            history = epoch_records(log.truncate_after(restored_step))
            print(f"resuming {workdir} from step {restored_step}")
        else:
            log.truncate_after(-1)
            history = []
            log.write("shapes", 0, table=[row.as_dict() for row in rows])
        print(f"{dataset.describe()}\n{format_table(rows)}")
        print(f"devices: {describe_devices()}; strategy: {strategy}; "
              f"{steps_per_epoch} steps/epoch of {config.batch_size}")
        train_images, train_labels = replicate(
            (dataset.train_images, dataset.train_labels), mesh)
        context = RunContext(
            config=config, workdir=workdir, network=network, mesh=mesh,
            train_images=train_images, train_labels=train_labels,
            val=eval_set(dataset.val_images, dataset.val_labels, config.eval_batch_size, mesh),
            test=eval_set(dataset.test_images, dataset.test_labels, config.eval_batch_size, mesh),
            steps_per_epoch=steps_per_epoch, chunk_steps=chunk_steps, log=log,
        )
        state = replicate(state, mesh)
        write_status(workdir, "running", step=int(jax.device_get(state.step)), pid=os.getpid())
        try:
            results = SingleRun(context, checkpointer, history, stop).run(state)
        except Diverged as error:
            log.write("diverged", error.step, reason=str(error))
            results = summarize(epoch_records(read_jsonl(log.path)), status="diverged",
                               reason=str(error), step=error.step)
            print(f"diverged: {error}; metrics and the last good checkpoint are kept",
                  file=sys.stderr)
        results.update(params=sum(r.params for r in rows), macs=sum(r.macs for r in rows))
        atomic_write_json(workdir / "results.json", results)
        write_status(workdir, results["status"],
                     **{k: results[k] for k in ("reason", "step") if k in results})
        return results
    except OSError as error:  # disk full, workdir removed or made read-only meanwhile
        try:
            write_status(workdir, "failed", reason=str(error))
        except OSError:
            pass
        raise workdir_failure(workdir, error) from error
    finally:
        for resource in (checkpointer, log):
            if resource is not None:
                try:
                    resource.close()
                except OSError:
                    pass


def _evaluate(context: RunContext, params, split: EvalSet) -> tuple[float, float]:
    """(mean loss, accuracy) on an evaluation split; (nan, nan) if it is empty."""
    if split.size == 0:
        return math.nan, math.nan
    run = compiled.eval_chunk(
        context.network, context.config.loss, len(split.labels) // split.chunks, context.mesh)
    loss_sum, hits = 0.0, 0.0
    for index in range(split.chunks):
        chunk_loss, chunk_hits = run(params, split.images, split.labels, split.weights, index)
        loss_sum, hits = loss_sum + chunk_loss, hits + chunk_hits
    loss_sum, hits = jax.device_get((loss_sum, hits))
    return float(loss_sum) / split.size, float(hits) / split.size


class SingleRun(TrainingLoop):
    """One model (possibly data-parallel over a mesh): a NaN raises `Diverged`."""

    def __init__(self, context: RunContext, checkpointer: Checkpointer,
                 history: list[dict[str, Any]], stop: StopRequests):
        super().__init__(context, stop)
        self.checkpointer, self.history = checkpointer, history
        self.data_key = jax.random.fold_in(jax.random.key(self.config.seed), 1)

    def step_of(self, state: TrainState) -> int:
        return int(jax.device_get(state.step))

    def orders(self, epoch: int) -> jax.Array:
        return jitted_epoch_order(self.data_key, epoch, len(self.context.train_labels))

    def program(self, num_steps: int):
        config = self.config
        return compiled.train_steps(self.context.network, config.loss, config.optimizer,
                                    config.schedule, config.batch_size, num_steps,
                                    self.context.mesh)

    def check_finite(self, state: TrainState, step: int) -> None:
        if not bool(state_is_finite(state)):
            raise Diverged(f"the training loss or the parameters became NaN or inf by step "
                           f"{step} (learning rate {self.config.learning_rate})", step)

    def log_train(self, state: TrainState, epoch: int, step: int, progress: Progress) -> None:
        sums = jax.device_get(state.epoch_sums)
        seen = max(int(sums["count"]), 1)
        loss, accuracy = float(sums["loss"]) / seen, float(sums["correct"]) / seen
        if not math.isfinite(loss):
            raise Diverged(f"the training loss became {loss} by step {step}", step)
        self.context.log.write("train", step, epoch=epoch + 1, loss=loss, accuracy=accuracy)
        progress.update(step, loss=loss, accuracy=accuracy)

    def save(self, state: TrainState) -> None:
        self.checkpointer.save(state)

    def end_epoch(self, state: TrainState, epoch: int, step: int, seconds: float, images: int,
                  progress: Progress) -> TrainState:
        record = _end_epoch(self.context, state, epoch, step, seconds, images)
        self.history.append(record)
        state = reset_epoch_sums(state)
        self.checkpointer.save(state, score=selection_score(record))
        progress.update(step, val_acc=record["val_accuracy"], test_acc=record["test_accuracy"],
                        img_s=record["images_per_second"])
        return state

    def interrupt(self, state: TrainState, step: int) -> dict[str, Any]:
        self.check_finite(state, step)
        self.checkpointer.save(state)
        print(f"\nstopped by {self.stop.signal_name} at step {step}; checkpoint saved; rerun the "
              f"same command to go on", file=sys.stderr)
        return summarize(self.history, status="interrupted", step=step)

    def finish(self, state: TrainState, step: int, compile_seconds: float) -> dict[str, Any]:
        results = summarize(self.history, status="done", step=step)
        results.update(compile_time_s=compile_seconds)
        finish_run(self.context, state, self.history, results)
        return results


def _end_epoch(context: RunContext, state: TrainState, epoch: int, step: int,
               seconds: float, images: int) -> dict[str, Any]:
    sums = jax.device_get(state.epoch_sums)
    count = max(int(sums["count"]), 1)
    val_loss, val_accuracy = _evaluate(context, state.params, context.val)
    test_loss, test_accuracy = _evaluate(context, state.params, context.test)
    return context.log.write(
        "epoch", step, epoch=epoch + 1, train_loss=float(sums["loss"]) / count,
        train_accuracy=float(sums["correct"]) / count, val_loss=none_if_nan(val_loss),
        val_accuracy=none_if_nan(val_accuracy), test_loss=none_if_nan(test_loss),
        test_accuracy=none_if_nan(test_accuracy), epoch_time_s=seconds,
        images_per_second=images / max(seconds, 1e-9),
    )


