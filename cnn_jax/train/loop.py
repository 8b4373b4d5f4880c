"""`train_and_evaluate(config, workdir)`: the one training function of the project.

The script, the sweeps, the benchmarks and the tests all call it. It validates the config before
loading data or compiling, resumes from the workdir's last checkpoint, evaluates on the validation
and test sets every epoch (Nielsen's protocol: the test accuracy reported is the one at the epoch
of best validation accuracy), stops cleanly on SIGTERM/SIGINT after saving, stops with status
'diverged' on NaN/inf keeping its metrics and last good checkpoint, and writes metrics.jsonl,
TensorBoard events, checkpoints, plots and a results.json summary.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from cnn_jax.config import ConfigError, validate_config
from cnn_jax.summary import format_table, shape_table
from cnn_jax.train import steps as compiled
from cnn_jax.train.checkpoints import Checkpointer
from cnn_jax.train.devices import describe_devices, device_count, make_mesh, replicate
from cnn_jax.train.inputs import EvalSet, eval_chunk_size, eval_set, load_for_config
from cnn_jax.train.interrupts import StopRequests
from cnn_jax.train.logs import MetricsLog, atomic_write_json, write_status
from cnn_jax.train.progress import Progress
from cnn_jax.train.state import TrainState, create_state, reset_epoch_sums
from cnn_jax.train.workdir import prepare_workdir

KNOWN_INPUT_SHAPES = {
    "mnist_5k": (28, 28, 1), "fashion_mnist_debian": (28, 28, 1), "mnist": (28, 28, 1),
    "fashion_mnist": (28, 28, 1), "kmnist": (28, 28, 1), "cifar10": (32, 32, 3),
}


class Diverged(RuntimeError):
    """NaN or infinity in the loss or the parameters."""


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
      dataset: an already loaded `cnn_jax.data.Dataset` (else the config's data set is loaded).
    Returns:
      results.json's content: status, test accuracy at the best validation epoch, final test
      accuracy, best epoch, times, throughput, parameters and multiply-adds.
    """
    workdir = Path(workdir)
    network = validate_config(config, KNOWN_INPUT_SHAPES.get(config.dataset))
    prepare_workdir(workdir, config, overwrite=overwrite)
    dataset = load_for_config(config) if dataset is None else dataset
    network = validate_config(config, dataset.image_shape)
    train_count = len(dataset.train_labels)
    if config.batch_size > train_count:
        raise ConfigError(
            "batch_size", config.batch_size,
            f"at most the number of training examples ({train_count})",
        )
    mesh = make_mesh()
    devices = device_count(mesh)
    if config.batch_size % devices:
        raise ConfigError("batch_size", config.batch_size,
                          f"a multiple of the number of devices ({devices})")
    steps_per_epoch = train_count // config.batch_size
    strategy = pick_strategy(config.strategy)
    chunk_steps = 1 if strategy == "step" else min(config.log_every_steps, steps_per_epoch)

    rows = shape_table(network, dataset.image_shape)
    log = MetricsLog(workdir)
    context = RunContext(
        config=config, workdir=workdir, network=network, mesh=mesh,
        train_images=None, train_labels=None, val=None, test=None,
        steps_per_epoch=steps_per_epoch, chunk_steps=chunk_steps, log=log,
    )
    checkpointer = Checkpointer(workdir, keep=config.checkpoint_keep)
    try:
        state = create_state(network, config, dataset.image_shape, steps_per_epoch)
        restored_step = checkpointer.latest_step()
        if restored_step is not None:
            state = checkpointer.restore(state, restored_step)
            history = [r for r in log.truncate_after(restored_step) if r["kind"] == "epoch"]
            print(f"resuming {workdir} from step {restored_step}")
        else:
            log.truncate_after(-1)
            history = []
            log.write("shapes", 0, table=[row.as_dict() for row in rows])
        print(f"{dataset.describe()}\n{format_table(rows)}")
        print(f"devices: {describe_devices()}; strategy: {strategy}; "
              f"{steps_per_epoch} steps/epoch of {config.batch_size}")
        context.train_images, context.train_labels = replicate(
            (dataset.train_images, dataset.train_labels), mesh)
        chunk = eval_chunk_size(config.eval_batch_size, max(len(dataset.test_labels), 1), devices)
        context.val = eval_set(dataset.val_images, dataset.val_labels, chunk, mesh)
        context.test = eval_set(dataset.test_images, dataset.test_labels, chunk, mesh)
        state = replicate(state, mesh)
        write_status(workdir, "running", step=int(state.step))
        results = _train(context, state, checkpointer, history)
    except Diverged as error:
        results = _summary(context, _epoch_history(log), status="diverged", reason=str(error))
    finally:
        checkpointer.close()
        log.close()
    results.update(params=sum(r.params for r in rows), macs=sum(r.macs for r in rows))
    atomic_write_json(workdir / "results.json", results)
    write_status(workdir, results["status"], **{k: results.get(k) for k in ("reason", "step")})
    return results


def _epoch_history(log: MetricsLog) -> list[dict[str, Any]]:
    from cnn_jax.train.logs import read_jsonl

    return [r for r in read_jsonl(log.path) if r["kind"] == "epoch"]


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


def _train(context: RunContext, state: TrainState, checkpointer: Checkpointer,
           history: list[dict[str, Any]]) -> dict[str, Any]:
    config, log = context.config, context.log
    spe, total_steps = context.steps_per_epoch, context.steps_per_epoch * config.num_epochs
    step = int(jax.device_get(state.step))
    data_key = jax.random.fold_in(jax.random.key(config.seed), 1)
    count = len(context.train_labels)
    order_fn = jax.jit(compiled.epoch_order, static_argnums=2)
    compile_seconds = 0.0
    programs: dict[int, Any] = {}

    def program(num_steps: int, order):
        nonlocal compile_seconds
        if num_steps not in programs:
            started = time.perf_counter()
            jitted = compiled.train_steps(
                context.network, config.loss, config.optimizer, config.schedule,
                config.batch_size, num_steps, context.mesh)
            programs[num_steps] = jitted.lower(
                state, context.train_images, context.train_labels, order, jnp.int32(0)).compile()
            compile_seconds += time.perf_counter() - started
        return programs[num_steps]

    progress = Progress(total_steps, step, enabled=config.progress)
    train_seconds = 0.0
    with StopRequests() as stop:
        for epoch in range(step // spe, config.num_epochs):
            order = order_fn(data_key, epoch, count)
            batch = step - epoch * spe
            epoch_start = time.perf_counter()
            while batch < spe:
                num_steps = min(context.chunk_steps, spe - batch)
                run = program(num_steps, order)
                started = time.perf_counter()
                state = run(state, context.train_images, context.train_labels, order,
                            jnp.int32(batch))
                batch, step = batch + num_steps, step + num_steps
                if step % config.nan_check_every < num_steps or batch == spe:
                    _check_finite(state, step)
                if step % config.log_every_steps < num_steps:
                    sums = jax.device_get(state.epoch_sums)
                    record = log.write("train", step, epoch=epoch + 1,
                                       loss=float(sums["loss"]) / max(int(sums["count"]), 1),
                                       accuracy=float(sums["correct"]) / max(int(sums["count"]), 1))
                    progress.update(step, loss=record["loss"], accuracy=record["accuracy"])
                else:
                    progress.update(step)
                train_seconds += time.perf_counter() - started
                if config.checkpoint_every_steps and step % config.checkpoint_every_steps == 0 \
                        and batch < spe:
                    checkpointer.save(state)
                if stop.requested:
                    jax.block_until_ready(state)
                    checkpointer.save(state)
                    progress.close()
                    print(f"stopped by {stop.signal_name} at step {step}; checkpoint saved")
                    return _summary(context, history, status="interrupted", step=step)
            jax.block_until_ready(state.params)
            epoch_seconds = time.perf_counter() - epoch_start
            record = _end_epoch(context, state, epoch, step, epoch_seconds)
            history.append(record)
            state = reset_epoch_sums(state)
            checkpointer.save(state, metrics={"val_accuracy": _rank_value(record)})
            progress.update(step, val_acc=record["val_accuracy"], test_acc=record["test_accuracy"],
                            img_s=record["images_per_second"])
    progress.close()
    results = _summary(context, history, status="done", step=step)
    results.update(compile_time_s=compile_seconds, train_time_s=train_seconds)
    _finish(context, state, history, results)
    return results


def _rank_value(record: dict[str, Any]) -> float:
    value = record["val_accuracy"]
    return record["test_accuracy"] if value is None or math.isnan(value) else value


def _check_finite(state: TrainState, step: int) -> None:
    loss_sum = float(jax.device_get(state.epoch_sums["loss"]))
    if not math.isfinite(loss_sum):
        raise Diverged(f"the training loss became {loss_sum} by step {step}")


def _end_epoch(context: RunContext, state: TrainState, epoch: int, step: int,
               seconds: float) -> dict[str, Any]:
    if not bool(compiled.all_finite(state.params)):
        raise Diverged(f"the parameters hold NaN or inf after epoch {epoch + 1}")
    sums = jax.device_get(state.epoch_sums)
    count = max(int(sums["count"]), 1)
    val_loss, val_accuracy = _evaluate(context, state.params, context.val)
    test_loss, test_accuracy = _evaluate(context, state.params, context.test)
    return context.log.write(
        "epoch", step, epoch=epoch + 1, train_loss=float(sums["loss"]) / count,
        train_accuracy=float(sums["correct"]) / count, val_loss=_none_if_nan(val_loss),
        val_accuracy=_none_if_nan(val_accuracy), test_loss=test_loss,
        test_accuracy=test_accuracy, epoch_time_s=seconds,
        images_per_second=int(sums["count"]) / max(seconds, 1e-9),
    )


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


def _summary(context: RunContext, history: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Nielsen's protocol: test accuracy at the epoch of best validation accuracy."""
    results: dict[str, Any] = {"epochs": len(history), **extra}
    if history:
        best = max(history, key=lambda r: (_rank_value(r), -r["epoch"]))
        results.update(
            best_epoch=best["epoch"], best_val_accuracy=best["val_accuracy"],
            test_accuracy_at_best_val=best["test_accuracy"],
            final_test_accuracy=history[-1]["test_accuracy"],
            final_train_loss=history[-1]["train_loss"],
            images_per_second=history[-1]["images_per_second"],
        )
    return results


def _finish(context: RunContext, state: TrainState, history: list[dict[str, Any]],
            results: dict[str, Any]) -> None:
    config = context.config
    if config.plots:
        from cnn_jax import plots

        params = jax.device_get(state.params)
        plots.plot_network_kernels(context.network, params, context.workdir)
        if context.test.size:
            image = jax.device_get(context.test.images[0])
            plots.plot_feature_maps_for(context.network, params, image,
                                        context.workdir / "feature_maps.png")
        plots.plot_learning_curves(history, context.workdir / "learning_curves.png")
    test = results.get("test_accuracy_at_best_val")
    print(
        f"done: {results['epochs']} epochs, test accuracy {test:.4f} at best validation epoch "
        f"{results.get('best_epoch')} (final {results.get('final_test_accuracy'):.4f}); "
        f"train {results['train_time_s']:.1f} s, compile {results['compile_time_s']:.1f} s, "
        f"{results.get('images_per_second', 0):.0f} img/s; workdir {context.workdir}"
    )
