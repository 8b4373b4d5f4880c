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

import dataclasses
import math
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from cnn_jax.config import ConfigError, validate_config, with_defaults
from cnn_jax.summary import format_table, shape_table
from cnn_jax.train import steps as compiled
from cnn_jax.train.checkpoints import Checkpointer
from cnn_jax.train.devices import describe_devices, device_count, make_mesh, replicate
from cnn_jax.train.inputs import EvalSet, eval_set, load_for_config
from cnn_jax.train.interrupts import StopRequests
from cnn_jax.train.logs import (
    TEMP_SUFFIX,
    MetricsLog,
    atomic_write_json,
    read_json,
    read_jsonl,
    read_status,
    write_status,
)
from cnn_jax.train.progress import Progress
from cnn_jax.train.state import TrainState, create_state, reset_epoch_sums
from cnn_jax.train.workdir import WorkdirLock, prepare_workdir, workdir_failure

FAULT_AFTER_STEPS_ENV = "CNN_JAX_FAULT_AFTER_STEPS"
FAULT_SIGNAL_ENV = "CNN_JAX_FAULT_SIGNAL"
TIMING_KEYS = ("epoch_time_s", "images_per_second", "train_time_s", "compile_time_s",
               "model_images_per_second")


class Diverged(RuntimeError):
    """NaN or infinity in the loss, the parameters or the optimizer state."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


@dataclasses.dataclass
class RunContext:
    """What one run works with, fixed after setup."""

    config: ml_collections.ConfigDict
    workdir: Path
    network: Any
    mesh: Any
    train_images: jax.Array
    train_labels: jax.Array
    val: EvalSet
    test: EvalSet
    steps_per_epoch: int
    chunk_steps: int
    log: MetricsLog


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
        finished = _finished_results(workdir)
        if finished is not None:
            print(f"{workdir}: already done (results.json); pass --overwrite to train again")
            return finished
        with StopRequests() as stop:
            return _run(config, workdir, dataset, stop)


def _finished_results(workdir: Path) -> dict[str, Any] | None:
    results = read_json(workdir / "results.json")
    if read_status(workdir) == "done" and isinstance(results, dict) \
            and results.get("status") == "done":
        return results
    return None


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
            history = _epochs(log.truncate_after(restored_step))
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
            results = _train(context, state, checkpointer, history, stop)
        except Diverged as error:
            log.write("diverged", error.step, reason=str(error))
            results = _summary(_epochs(read_jsonl(log.path)), status="diverged",
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


def _epochs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("kind") == "epoch"]


def _crossed(step: int, num_steps: int, every: int) -> bool:
    """Whether a multiple of `every` lies in (step - num_steps, step]."""
    return every > 0 and step // every > (step - num_steps) // every


def _fault_injection() -> tuple[int, signal.Signals] | None:
    """(step, signal) from CNN_JAX_FAULT_AFTER_STEPS / CNN_JAX_FAULT_SIGNAL, or None."""
    text = os.environ.get(FAULT_AFTER_STEPS_ENV, "").strip()
    if not text:
        return None
    name = os.environ.get(FAULT_SIGNAL_ENV, "SIGKILL").strip().upper()
    return int(text), signal.Signals[name if name.startswith("SIG") else f"SIG{name}"]


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


def _compile(context: RunContext, state: TrainState, order: jax.Array, sizes: set[int]):
    """{num_steps: compiled program} for the chunk lengths a run needs; seconds spent."""
    started = time.perf_counter()
    programs = {}
    for num_steps in sorted(sizes):
        jitted = compiled.train_steps(
            context.network, context.config.loss, context.config.optimizer,
            context.config.schedule, context.config.batch_size, num_steps, context.mesh)
        programs[num_steps] = jitted.lower(
            state, context.train_images, context.train_labels, order, jnp.int32(0)).compile()
    return programs, time.perf_counter() - started


_epoch_order = jax.jit(compiled.epoch_order, static_argnums=2)


@jax.jit
def _state_is_finite(state: TrainState) -> jax.Array:
    """No NaN/inf in the epoch's loss sum, the parameters or the optimizer state."""
    return jnp.isfinite(state.epoch_sums["loss"]) & compiled.all_finite(
        (state.params, state.opt_state))


def _train(context: RunContext, state: TrainState, checkpointer: Checkpointer,
           history: list[dict[str, Any]], stop: StopRequests) -> dict[str, Any]:
    config, log = context.config, context.log
    spe, chunk = context.steps_per_epoch, context.chunk_steps
    total_steps = spe * config.num_epochs
    step = int(jax.device_get(state.step))
    data_key = jax.random.fold_in(jax.random.key(config.seed), 1)
    count = len(context.train_labels)
    order_fn = _epoch_order
    finite = _state_is_finite
    fault = _fault_injection()

    def check_finite(state: TrainState, step: int) -> None:
        if not bool(finite(state)):
            raise Diverged(f"the training loss or the parameters became NaN or inf by step "
                           f"{step} (learning rate {config.learning_rate})", step)

    programs, compile_seconds = {}, 0.0
    if step < total_steps:
        sizes = {chunk} | ({spe % chunk} if spe % chunk else set())
        programs, compile_seconds = _compile(context, state, order_fn(data_key, 0, count), sizes)

    progress = Progress(total_steps, step, enabled=config.progress)
    try:
        for epoch in range(step // spe, config.num_epochs):
            order = order_fn(data_key, epoch, count)
            batch = first_batch = step - epoch * spe
            epoch_start = time.perf_counter()
            while batch < spe:
                if stop.requested:
                    return _interrupt(context, state, step, checkpointer, history, stop,
                                      check_finite)
                num_steps = min(chunk - batch % chunk, spe - batch)  # chunks aligned in epoch
                state = programs[num_steps](state, context.train_images, context.train_labels,
                                            order, jnp.int32(batch))
                batch, step = batch + num_steps, step + num_steps
                checked = _crossed(step, num_steps, config.nan_check_every) or batch == spe
                if checked:
                    check_finite(state, step)
                if _crossed(step, num_steps, config.log_every_steps):
                    sums = jax.device_get(state.epoch_sums)
                    seen = max(int(sums["count"]), 1)
                    loss = float(sums["loss"]) / seen
                    if not math.isfinite(loss):
                        raise Diverged(f"the training loss became {loss} by step {step}", step)
                    log.write("train", step, epoch=epoch + 1, loss=loss,
                              accuracy=float(sums["correct"]) / seen)
                    progress.update(step, loss=loss, accuracy=float(sums["correct"]) / seen)
                else:
                    progress.update(step)
                if batch < spe and _crossed(step, num_steps, config.checkpoint_every_steps):
                    if not checked:
                        check_finite(state, step)
                    checkpointer.save(state)
                if fault is not None and _crossed(step, num_steps, fault[0]) \
                        and step - num_steps < fault[0]:
                    jax.block_until_ready(state)
                    os.kill(os.getpid(), fault[1])
            jax.block_until_ready(state)
            seconds = time.perf_counter() - epoch_start
            images = (spe - first_batch) * config.batch_size
            record = _end_epoch(context, state, epoch, step, seconds, images)
            history.append(record)
            state = reset_epoch_sums(state)
            checkpointer.save(state, score=_selection_score(record))
            progress.update(step, val_acc=record["val_accuracy"],
                            test_acc=record["test_accuracy"], img_s=record["images_per_second"])
    finally:
        progress.close()
    results = _summary(history, status="done", step=step)
    results.update(compile_time_s=compile_seconds)
    _finish(context, state, history, results)
    return results


def _interrupt(context: RunContext, state: TrainState, step: int, checkpointer: Checkpointer,
               history: list[dict[str, Any]], stop: StopRequests, check_finite) -> dict[str, Any]:
    jax.block_until_ready(state)
    check_finite(state, step)
    checkpointer.save(state)
    print(f"\nstopped by {stop.signal_name} at step {step}; checkpoint saved; rerun the same "
          f"command to go on", file=sys.stderr)
    return _summary(history, status="interrupted", step=step)


def _selection_score(record: dict[str, Any]) -> float:
    """What picks the best checkpoint: validation accuracy, or the epoch without validation."""
    value = record.get("val_accuracy")
    return float(record["epoch"]) if value is None else float(value)


def _end_epoch(context: RunContext, state: TrainState, epoch: int, step: int,
               seconds: float, images: int) -> dict[str, Any]:
    sums = jax.device_get(state.epoch_sums)
    count = max(int(sums["count"]), 1)
    val_loss, val_accuracy = _evaluate(context, state.params, context.val)
    test_loss, test_accuracy = _evaluate(context, state.params, context.test)
    return context.log.write(
        "epoch", step, epoch=epoch + 1, train_loss=float(sums["loss"]) / count,
        train_accuracy=float(sums["correct"]) / count, val_loss=_none_if_nan(val_loss),
        val_accuracy=_none_if_nan(val_accuracy), test_loss=_none_if_nan(test_loss),
        test_accuracy=_none_if_nan(test_accuracy), epoch_time_s=seconds,
        images_per_second=images / max(seconds, 1e-9),
    )


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


def _summary(history: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Nielsen's protocol: the test accuracy at the epoch of best validation accuracy (the
    earliest on ties), next to the final test accuracy. Without a validation split no epoch is
    chosen on test data: the final epoch is reported."""
    results: dict[str, Any] = {"epochs": len(history), **extra}
    if not history:
        return results
    has_val = any(r.get("val_accuracy") is not None for r in history)
    if has_val:
        best = max(history, key=lambda r: (_selection_score(r), -r["epoch"]))
        selection = "best validation accuracy"
    else:
        best, selection = history[-1], "final epoch (no validation split)"
    final = history[-1]
    results.update(
        selection=selection, best_epoch=best["epoch"], best_val_accuracy=best["val_accuracy"],
        test_accuracy_at_best_val=best["test_accuracy"],
        final_test_accuracy=final["test_accuracy"], final_val_accuracy=final["val_accuracy"],
        final_train_loss=final["train_loss"], final_train_accuracy=final["train_accuracy"],
        images_per_second=final["images_per_second"],
        train_time_s=sum(r["epoch_time_s"] for r in history),
    )
    return results


def _finish(context: RunContext, state: TrainState, history: list[dict[str, Any]],
            results: dict[str, Any]) -> None:
    config = context.config
    if config.plots:
        try:
            results["plots"] = _plot(context, state, history)
        except Exception as error:  # a figure must never cost a finished run its results
            results["plots_error"] = f"{type(error).__name__}: {error}"
            print(f"warning: plots failed: {results['plots_error']}", file=sys.stderr)
    test, final = results.get("test_accuracy_at_best_val"), results.get("final_test_accuracy")
    print(
        f"done: {results['epochs']} epochs, test accuracy {_fmt(test)} at epoch "
        f"{results.get('best_epoch')} ({results.get('selection')}; final {_fmt(final)}); "
        f"train {results.get('train_time_s', 0.0):.1f} s, compile "
        f"{results['compile_time_s']:.1f} s, {results.get('images_per_second', 0):.0f} img/s; "
        f"workdir {context.workdir}"
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _plot(context: RunContext, state: TrainState, history: list[dict[str, Any]]) -> list[str]:
    """Kernels, feature maps and learning curves as PNGs in the workdir, each renamed into place
    from a temp folder so that a kill never leaves a half-written image."""
    from cnn_jax import plots

    params = jax.device_get(state.params)
    workdir = context.workdir
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".plots.", suffix=TEMP_SUFFIX) as temp:
        temp = Path(temp)
        plots.plot_network_kernels(context.network, params, temp)
        if context.test.size:
            image = jax.device_get(context.test.images[0])
            plots.plot_feature_maps_for(context.network, params, image,
                                        temp / "feature_maps.png")
        plots.plot_learning_curves(history, temp / "learning_curves.png")
        names = sorted(path.name for path in temp.glob("*.png"))
        for name in names:
            os.replace(temp / name, workdir / name)
    return names
