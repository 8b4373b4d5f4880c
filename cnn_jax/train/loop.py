"""The training loop: epochs of chunks of steps for a group of runs, with their bookkeeping.

A lone run is a group of one. `Group` holds what the runs train with (data, the compiled
programs, the mesh) and each run's bookkeeping (`Run`: checkpointer, metrics log, history,
whether it is still training); the only difference between a lone run and a vmapped group is
`Group.stacked`: the program (`steps.train_steps(..., models=...)`), the mesh, and how a run's
values are read out of the state.

`train(group, state, stop)` runs, for each epoch:

1. the chunks of steps (`train_chunks`), aligned to multiples of the chunk length within the
   epoch so that a resumed run runs the same programs on the same batches; after each chunk a
   NaN/inf check every `config.nan_check_every` steps (and at the epoch's end), a train record
   every `config.log_every_steps`, a checkpoint every `config.checkpoint_every_steps`, then the
   callbacks (tests use one to kill the process at a given step);
2. the epoch's end: evaluation on the validation and test sets, the epoch record, the running
   sums reset, a checkpoint scored by validation accuracy.

A run whose loss, parameters or optimizer state turn NaN/inf is `diverged` at the check that
sees it (its last good checkpoint is kept: no non-finite state is saved); the others go on.
On SIGINT/SIGTERM (`stop.requested`) every run still training saves and ends `interrupted`.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh

from cnn_jax.layers.formulations import Formulation
from cnn_jax.network import Network
from cnn_jax.train import results, steps
from cnn_jax.train.checkpoints import Checkpointer
from cnn_jax.train.devices import replicate, shard_models
from cnn_jax.train.inputs import EvalSet
from cnn_jax.train.interrupts import StopRequests
from cnn_jax.train.logs import MetricsLog, read_jsonl
from cnn_jax.train.progress import Progress, percent, plural
from cnn_jax.train.state import TrainState, reset_epoch_sums, stack_states, unstack_state

# Called after every chunk of steps, once its checks, records and checkpoint are done, with the
# number of steps taken so far and the chunk's length.
Callback = Callable[[int, int], None]


@dataclasses.dataclass
class Run:
    """One model of a group: its config, its files and the records of its finished epochs."""

    config: ml_collections.ConfigDict
    workdir: Path | None  # None, with no checkpointer and no log: nothing is saved (benchmark)
    checkpointer: Checkpointer | None
    log: MetricsLog | None
    history: list[dict[str, Any]]
    data_key: jax.Array
    outcome: dict[str, Any] | None = None  # set once the run stops early (diverged)

    @property
    def alive(self) -> bool:
        return self.outcome is None


@dataclasses.dataclass
class Group:
    """What a set of runs trains with, fixed after setup.

    stacked=False: one run, its batch sharded over `mesh` (axis 'data'); stacked=True: every
    leaf of the state has a leading model axis, the models split over `mesh` (axis 'models').
    """

    runs: list[Run]
    network: Network
    stacked: bool
    mesh: Mesh | None
    train_images: jax.Array
    train_labels: jax.Array
    val: EvalSet
    test: EvalSet
    steps_per_epoch: int
    chunk_steps: int
    train_formulation: Formulation
    eval_formulation: Formulation

    @property
    def config(self) -> ml_collections.ConfigDict:
        """The settings the runs share (everything but learning rate, λ, momentum and seed)."""
        return self.runs[0].config

    def program(self, num_steps: int):
        config = self.config
        return steps.train_steps(
            self.network, config.loss, config.optimizer, config.schedule, config.batch_size,
            num_steps, None if self.stacked else self.mesh, self.train_formulation,
            models=self.stacked)

    def compile(self, state: TrainState) -> tuple[dict[int, Any], float]:
        """{num_steps: compiled program} for the chunk lengths an epoch needs; seconds spent."""
        spe, chunk = self.steps_per_epoch, self.chunk_steps
        orders = jax.block_until_ready(self.orders(0))
        started = time.perf_counter()
        programs = {
            num_steps: self.program(num_steps).lower(
                state, self.train_images, self.train_labels, orders, jnp.int32(0)).compile()
            for num_steps in sorted({chunk} | ({spe % chunk} if spe % chunk else set()))
        }
        return programs, time.perf_counter() - started

    def place(self, states: Sequence[TrainState]) -> TrainState:
        """The runs' states on the device(s): stacked and split over the models, or the one
        state replicated over the data mesh."""
        if self.stacked:
            return shard_models(stack_states(states), self.mesh)
        return replicate(states[0], self.mesh)

    def orders(self, epoch: int) -> jax.Array:
        count = len(self.train_labels)
        if not self.stacked:
            return steps.jitted_epoch_order(self.runs[0].data_key, epoch, count)
        return shard_models(jnp.stack([steps.jitted_epoch_order(run.data_key, epoch, count)
                                       for run in self.runs]), self.mesh)

    def member(self, state: TrainState, index: int) -> TrainState:
        """Run `index`'s own state."""
        return unstack_state(state, index) if self.stacked else state

    def finite(self, state: TrainState) -> np.ndarray:
        """(M,) bools: whether each run's loss sum, parameters and optimizer state are finite."""
        check = steps.models_are_finite if self.stacked else steps.jitted_state_is_finite
        return np.atleast_1d(np.asarray(jax.device_get(check(state))))

    def sums(self, state: TrainState) -> dict[str, np.ndarray]:
        """The epoch's running sums {loss, correct, count}, each (M,)."""
        return {key: np.atleast_1d(np.asarray(value))
                for key, value in jax.device_get(state.epoch_sums).items()}

    def evaluate(self, params, split: EvalSet) -> tuple[np.ndarray, np.ndarray]:
        """(mean loss, accuracy) of every run on `split`, each (M,); NaN if it is empty."""
        models = len(self.runs)
        if split.size == 0:
            return np.full(models, np.nan), np.full(models, np.nan)
        run = steps.eval_chunk(self.network, self.config.loss, len(split.labels) // split.chunks,
                               None if self.stacked else self.mesh, self.eval_formulation,
                               models=self.stacked)
        loss_sum, hits = 0.0, 0.0
        for index in range(split.chunks):
            chunk_loss, chunk_hits = run(params, split.images, split.labels, split.weights, index)
            loss_sum, hits = loss_sum + chunk_loss, hits + chunk_hits
        loss_sum, hits = jax.device_get((loss_sum, hits))
        return (np.atleast_1d(np.asarray(loss_sum)) / split.size,
                np.atleast_1d(np.asarray(hits)) / split.size)

    def training(self) -> list[int]:
        """The indices of the runs still training (not diverged)."""
        return [index for index, run in enumerate(self.runs) if run.alive]


def crossed(step: int, num_steps: int, every: int) -> bool:
    """Whether a multiple of `every` lies in (step - num_steps, step]."""
    return every > 0 and step // every > (step - num_steps) // every


def chunk_lengths(batch: int, end: int, chunk: int) -> Iterator[int]:
    """The lengths of the chunks that cover batches [batch, end) of an epoch, each ending on a
    multiple of `chunk` (or at `end`)."""
    while batch < end:
        num_steps = min(chunk - batch % chunk, end - batch)
        yield num_steps
        batch += num_steps


def train_chunks(group: Group, programs: dict[int, Any], state: TrainState, epoch: int,
                 batch: int, end: int, step: int, *, stop: StopRequests | None = None,
                 progress: Progress | None = None, callbacks: Sequence[Callback] = ()
                 ) -> tuple[TrainState, int, int]:
    """Runs batches [batch, end) of `epoch` in chunks, with the checks, records, checkpoints and
    callbacks after each chunk; returns (state, batch reached, step reached). Stops early at a
    chunk boundary when `stop` is requested or no run is left training."""
    config, spe = group.config, group.steps_per_epoch
    orders = group.orders(epoch)
    for num_steps in chunk_lengths(batch, end, group.chunk_steps):
        if (stop is not None and stop.requested) or not group.training():
            break
        state = programs[num_steps](state, group.train_images, group.train_labels, orders,
                                    jnp.int32(batch))
        batch, step = batch + num_steps, step + num_steps
        checked = crossed(step, num_steps, config.nan_check_every) or batch == spe
        if checked:
            check_finite(group, state, step)
        if crossed(step, num_steps, config.log_every_steps):
            log_train(group, state, epoch, step, progress)
        elif progress is not None:
            progress.update(step)
        if batch < spe and crossed(step, num_steps, config.checkpoint_every_steps):
            if not checked:
                check_finite(group, state, step)
            save(group, state)
        for callback in callbacks:
            jax.block_until_ready(state)
            callback(step, num_steps)
    return state, batch, step


def train(group: Group, state: TrainState, *, stop: StopRequests, programs: dict[int, Any],
          compile_seconds: float, callbacks: Sequence[Callback] = ()) -> list[dict[str, Any]]:
    """Trains the group from `state` to the end of its epochs; returns each run's results."""
    config, spe = group.config, group.steps_per_epoch
    total_steps = spe * config.num_epochs
    step = int(jax.device_get(state.step if not group.stacked else state.step[0]))
    progress = Progress(total_steps, step, enabled=config.progress)
    try:
        for epoch in range(step // spe, config.num_epochs):
            batch = first_batch = step - epoch * spe
            started = time.perf_counter()
            state, batch, step = train_chunks(group, programs, state, epoch, batch, spe, step,
                                              stop=stop, progress=progress, callbacks=callbacks)
            jax.block_until_ready(state)
            if not group.training():
                break
            if batch < spe:  # stopped by a signal within the epoch
                return interrupt(group, state, step, stop.signal_name)
            state = end_epoch(group, state, epoch, step, time.perf_counter() - started,
                              (spe - first_batch) * config.batch_size, progress)
    finally:
        progress.close()
    return finish(group, state, step, compile_seconds)


def diverge(group: Group, index: int, step: int, reason: str) -> None:
    """Ends run `index` as diverged: a record, its results from the log; the others go on."""
    run = group.runs[index]
    if run.log is not None:
        run.log.write("diverged", step, reason=reason)
        history = results.epoch_records(read_jsonl(run.log.path))
    else:
        history = run.history
    run.outcome = results.summarize(history, status="diverged", reason=reason, step=step)
    print(f"{run.workdir}: diverged: {reason}; metrics and the last good checkpoint are kept",
          file=sys.stderr)


def check_finite(group: Group, state: TrainState, step: int) -> None:
    """Marks every run whose loss, parameters or optimizer state hold NaN/inf as diverged."""
    finite = group.finite(state)
    for index in group.training():
        if not finite[index]:
            rate = group.runs[index].config.learning_rate
            diverge(group, index, step, f"the training loss or the parameters became NaN or inf "
                                        f"by step {step} (learning rate {rate})")


def log_train(group: Group, state: TrainState, epoch: int, step: int,
              progress: Progress | None) -> None:
    """The train record (loss and accuracy of the epoch so far) of every run still training."""
    sums = group.sums(state)
    shown = {}
    for index in group.training():
        seen = max(int(sums["count"][index]), 1)
        loss = float(sums["loss"][index]) / seen
        if not math.isfinite(loss):
            diverge(group, index, step, f"the training loss became {loss} by step {step}")
            continue
        accuracy = float(sums["correct"][index]) / seen
        run = group.runs[index]
        if run.log is not None:
            run.log.write("train", step, epoch=epoch + 1, loss=loss, accuracy=accuracy)
        shown = {"loss": loss, "accuracy": accuracy}
    if progress is not None:
        progress.update(step, **(shown if len(group.runs) == 1 else
                                 {"models": len(group.training())}))


def save(group: Group, state: TrainState, scores: dict[int, float] | None = None) -> None:
    """A checkpoint of every run still training (scored at the end of an epoch)."""
    for index in group.training():
        run = group.runs[index]
        if run.checkpointer is not None:
            score = None if scores is None else scores[index]
            run.checkpointer.save(group.member(state, index), score=score)


def end_epoch(group: Group, state: TrainState, epoch: int, step: int, seconds: float,
              images: int, progress: Progress) -> TrainState:
    """Evaluates, writes every run's epoch record, resets the sums and saves; returns the state
    the next epoch starts from."""
    sums = group.sums(state)
    val_loss, val_accuracy = group.evaluate(state.params, group.val)
    test_loss, test_accuracy = group.evaluate(state.params, group.test)
    extra = {}
    if group.stacked:
        extra["model_images_per_second"] = len(group.runs) * images / max(seconds, 1e-9)
    scores = {}
    for index in group.training():
        run = group.runs[index]
        count = max(int(sums["count"][index]), 1)
        record = {
            "epoch": epoch + 1, "train_loss": float(sums["loss"][index]) / count,
            "train_accuracy": float(sums["correct"][index]) / count,
            "val_loss": results.none_if_nan(float(val_loss[index])),
            "val_accuracy": results.none_if_nan(float(val_accuracy[index])),
            "test_loss": results.none_if_nan(float(test_loss[index])),
            "test_accuracy": results.none_if_nan(float(test_accuracy[index])),
            "epoch_time_s": seconds, "images_per_second": images / max(seconds, 1e-9), **extra,
        }
        if run.log is not None:
            record = run.log.write("epoch", step, **record)
        run.history.append(record)
        scores[index] = results.selection_score(record)
    state = reset_epoch_sums(state)
    save(group, state, scores)
    head = f"epoch {epoch + 1}/{group.config.num_epochs}: "
    if len(group.runs) == 1 and group.runs[0].alive:
        record = group.runs[0].history[-1]
        progress.epoch(
            step, f"{head}train loss {record['train_loss']:.4f}, accuracy "
            f"{percent(record['train_accuracy'])}; validation {percent(record['val_accuracy'])}, "
            f"test {percent(record['test_accuracy'])}; {seconds:.1f} s, "
            f"{record['images_per_second']:,.0f} img/s",
            val_acc=record["val_accuracy"], test_acc=record["test_accuracy"],
            img_s=record["images_per_second"])
    else:
        alive_val = [val_accuracy[i] for i in group.training() if not np.isnan(val_accuracy[i])]
        best = max(alive_val) if alive_val else None
        rate = extra.get("model_images_per_second", 0)
        progress.epoch(
            step, f"{head}{plural(len(group.training()), 'model')} training, best validation "
            f"{percent(best)}; {seconds:.1f} s, {rate:,.0f} model-img/s",
            models=len(group.training()), best_val=None if best is None else round(best, 4),
            model_img_s=round(rate))
    return state


def interrupt(group: Group, state: TrainState, step: int, signal_name: str
              ) -> list[dict[str, Any]]:
    """Saves every run still training and ends it `interrupted` (SIGINT/SIGTERM)."""
    check_finite(group, state, step)
    save(group, state)
    for index in group.training():
        run = group.runs[index]
        run.outcome = results.summarize(run.history, status="interrupted", step=step)
    saved = "checkpoint saved" if len(group.runs) == 1 else "checkpoints saved"
    print(f"\nstopped by {signal_name} at step {step}; {saved}; rerun the same command to go on",
          file=sys.stderr)
    return [run.outcome for run in group.runs]


def finish(group: Group, state: TrainState, step: int, compile_seconds: float
           ) -> list[dict[str, Any]]:
    """The results of the runs that trained every epoch (plots and a closing line each)."""
    for index in group.training():
        run = group.runs[index]
        outcome = results.summarize(run.history, status="done", step=step)
        outcome.update(compile_time_s=compile_seconds)
        if group.stacked and run.history:
            outcome["model_images_per_second"] = run.history[-1].get("model_images_per_second")
        results.finish_run(run, group.network, group.member(state, index), group.test, outcome)
        run.outcome = outcome
    return [run.outcome for run in group.runs]
