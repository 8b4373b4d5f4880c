"""The loop over epochs and chunks of steps that one run and a vmapped group of runs share.

`TrainingLoop.run(state)` cuts every epoch into chunks of steps aligned within the epoch (one
jitted step per call, or `lax.scan`-fused chunks), checks for NaN/inf every
`config.nan_check_every` steps and at every epoch end, writes train records every
`config.log_every_steps` steps, saves mid-epoch checkpoints every `config.checkpoint_every_steps`,
stops cleanly on SIGINT/SIGTERM and fires the fault-injection hook (see `cnn_jax.train.loop`).
`cnn_jax.train.loop.SingleRun` and `cnn_jax.train.vmapped` say how to compile, check, log, save
and evaluate.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import signal
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from cnn_jax.train import steps as compiled
from cnn_jax.train.inputs import EvalSet
from cnn_jax.train.interrupts import StopRequests
from cnn_jax.train.logs import MetricsLog
from cnn_jax.train.progress import Progress
from cnn_jax.train.state import TrainState

FAULT_AFTER_STEPS_ENV = "CNN_JAX_FAULT_AFTER_STEPS"
FAULT_SIGNAL_ENV = "CNN_JAX_FAULT_SIGNAL"
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


def crossed(step: int, num_steps: int, every: int) -> bool:
    """Whether a multiple of `every` lies in (step - num_steps, step]."""
    return every > 0 and step // every > (step - num_steps) // every


def fault_injection() -> tuple[int, signal.Signals] | None:
    """(step, signal) from CNN_JAX_FAULT_AFTER_STEPS / CNN_JAX_FAULT_SIGNAL, or None."""
    text = os.environ.get(FAULT_AFTER_STEPS_ENV, "").strip()
    if not text:
        return None
    name = os.environ.get(FAULT_SIGNAL_ENV, "SIGKILL").strip().upper()
    return int(text), signal.Signals[name if name.startswith("SIG") else f"SIG{name}"]


jitted_epoch_order = jax.jit(compiled.epoch_order, static_argnums=2)


@jax.jit
def state_is_finite(state: TrainState) -> jax.Array:
    """No NaN/inf in the epoch's loss sum, the parameters or the optimizer state."""
    return jnp.isfinite(state.epoch_sums["loss"]) & compiled.all_finite(
        (state.params, state.opt_state))


class TrainingLoop(abc.ABC):
    """The loop over epochs and chunks of steps, shared by one run (`SingleRun`) and a vmapped
    group of runs (`cnn_jax.train.vmapped`): chunks aligned within the epoch, NaN checks, train
    records, mid-epoch checkpoints, the fault-injection hook, clean stops and epoch ends.
    Subclasses say how to compile, check, log, save and evaluate."""

    def __init__(self, context: RunContext, stop: StopRequests):
        self.context, self.config, self.stop = context, context.config, stop

    # -- what a subclass provides --------------------------------------------------------------
    @abc.abstractmethod
    def step_of(self, state: TrainState) -> int:
        """The number of steps `state` has taken."""

    @abc.abstractmethod
    def orders(self, epoch: int) -> jax.Array:
        """The data order(s) of `epoch`."""

    @abc.abstractmethod
    def program(self, num_steps: int):
        """The jitted function that runs `num_steps` steps."""

    def training(self) -> bool:
        """Whether any model is still training (a diverged one stops)."""
        return True

    @abc.abstractmethod
    def check_finite(self, state: TrainState, step: int) -> None:
        """React to NaN/inf in the loss sums, parameters or optimizer state."""

    @abc.abstractmethod
    def log_train(self, state: TrainState, epoch: int, step: int, progress: Progress) -> None:
        """Write the train record(s) of the epoch so far."""

    @abc.abstractmethod
    def save(self, state: TrainState) -> None:
        """Save a mid-epoch checkpoint (or one per model)."""

    @abc.abstractmethod
    def end_epoch(self, state: TrainState, epoch: int, step: int, seconds: float, images: int,
                  progress: Progress) -> TrainState:
        """Evaluate, write the epoch record(s), reset the sums, save; the state goes on."""

    @abc.abstractmethod
    def interrupt(self, state: TrainState, step: int) -> Any:
        """Save and return the results of a run stopped by SIGINT/SIGTERM."""

    @abc.abstractmethod
    def finish(self, state: TrainState, step: int, compile_seconds: float) -> Any:
        """The results of a run that trained every epoch."""

    # -- the loop ------------------------------------------------------------------------------
    def _compile(self, state: TrainState, sizes: set[int]):
        """{num_steps: compiled program} for the chunk lengths a run needs; seconds spent."""
        started = time.perf_counter()
        context, orders = self.context, self.orders(0)
        programs = {
            num_steps: self.program(num_steps).lower(
                state, context.train_images, context.train_labels, orders, jnp.int32(0)
            ).compile()
            for num_steps in sorted(sizes)
        }
        return programs, time.perf_counter() - started

    def run(self, state: TrainState) -> Any:
        config, context = self.config, self.context
        spe, chunk = context.steps_per_epoch, context.chunk_steps
        total_steps = spe * config.num_epochs
        step = self.step_of(state)
        programs, compile_seconds = {}, 0.0
        if step < total_steps:
            programs, compile_seconds = self._compile(
                state, {chunk} | ({spe % chunk} if spe % chunk else set()))
        fault = fault_injection()
        progress = Progress(total_steps, step, enabled=config.progress)
        try:
            for epoch in range(step // spe, config.num_epochs):
                if not self.training():
                    break
                orders = self.orders(epoch)
                batch = first_batch = step - epoch * spe
                epoch_start = time.perf_counter()
                while batch < spe:
                    if self.stop.requested:
                        jax.block_until_ready(state)
                        return self.interrupt(state, step)
                    num_steps = min(chunk - batch % chunk, spe - batch)  # aligned in the epoch
                    state = programs[num_steps](state, context.train_images,
                                                context.train_labels, orders, jnp.int32(batch))
                    batch, step = batch + num_steps, step + num_steps
                    checked = crossed(step, num_steps, config.nan_check_every) or batch == spe
                    if checked:
                        self.check_finite(state, step)
                    if crossed(step, num_steps, config.log_every_steps):
                        self.log_train(state, epoch, step, progress)
                    else:
                        progress.update(step)
                    if batch < spe and crossed(step, num_steps, config.checkpoint_every_steps):
                        if not checked:
                            self.check_finite(state, step)
                        self.save(state)
                    if fault is not None and crossed(step, num_steps, fault[0]) \
                            and step - num_steps < fault[0]:
                        jax.block_until_ready(state)
                        os.kill(os.getpid(), fault[1])
                jax.block_until_ready(state)
                state = self.end_epoch(state, epoch, step, time.perf_counter() - epoch_start,
                                       (spe - first_batch) * config.batch_size, progress)
        finally:
            progress.close()
        return self.finish(state, step, compile_seconds)
