"""Same-shape trials trained as one `jax.vmap`-ed program: `train_vmapped(configs, workdirs)`.

Trials that differ only in values the training state holds as arrays — learning rate, λ,
momentum and seed (`VALUE_KEYS`) — run the same compiled step, so M of them can be stacked on a
leading model axis and trained together: one dispatch per step for M models, which fills an
accelerator that one small CNN leaves mostly idle. Each model keeps its own parameters, optimizer
state, learning rate, λ, dropout keys and data order (a pure function of its seed, as in
`train_and_evaluate`), and each workdir ends as `train_and_evaluate` leaves it: metrics.jsonl,
TensorBoard events, Orbax checkpoints, plots, status.json and results.json. The numbers agree
with one run per trial up to float rounding (a batched convolution is another XLA program).

What differs from one `train_and_evaluate` per trial:
* one device (no data-parallel mesh), one data set for the group;
* a model whose loss or parameters turn NaN/inf is recorded `diverged` at the check that sees it
  and the others go on (its lane keeps computing, ignored);
* on SIGINT/SIGTERM every model still training saves a checkpoint and ends `interrupted`; a rerun
  resumes the group from the latest step of which every model holds a checkpoint, and refuses
  (`GroupError`) when there is none — resume those trials one by one then.
The fault-injection hook of `cnn_jax.train.loop` (CNN_JAX_FAULT_AFTER_STEPS) works here too.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cnn_jax.config import validate_config, with_defaults
from cnn_jax.summary import format_table, shape_table
from cnn_jax.train import steps as compiled
from cnn_jax.train.checkpoints import Checkpointer
from cnn_jax.train.devices import describe_devices
from cnn_jax.train.inputs import EvalSet, eval_set, load_for_config
from cnn_jax.train.interrupts import StopRequests
from cnn_jax.train.logs import MetricsLog, atomic_write_json, read_jsonl, write_status
from cnn_jax.train.loop import (
    RunContext,
    _crossed,
    _epoch_order,
    _epochs,
    _fault_injection,
    _finish,
    _finished_results,
    _none_if_nan,
    _selection_score,
    _state_is_finite,
    _summary,
    pick_strategy,
)
from cnn_jax.train.progress import Progress
from cnn_jax.train.state import TrainState, create_state, reset_epoch_sums
from cnn_jax.train.workdir import WorkdirLock, prepare_workdir, workdir_failure

VALUE_KEYS = ("learning_rate", "l2", "momentum", "seed")


class GroupError(ValueError):
    """Configs that cannot share one program, or workdirs that cannot resume together."""


def program_key(config: ml_collections.ConfigDict, *, data_from_config: bool = True) -> str:
    """What configs must share to train as one vmapped program: every key but `VALUE_KEYS` (the
    seed counts for the synthetic data set, whose images depend on it, unless the data set is
    given rather than loaded from the config: `data_from_config=False`)."""
    values = with_defaults(config).to_dict()
    for key in VALUE_KEYS:
        if not (key == "seed" and values["dataset"] == "synthetic" and data_from_config):
            values.pop(key)
    return json.dumps(values, sort_keys=True, default=str)


def train_vmapped(
    configs: Sequence[ml_collections.ConfigDict], workdirs: Sequence[str | Path], *,
    dataset: Any = None, overwrite: bool = False,
) -> list[dict[str, Any]]:
    """Trains `configs[i]` in `workdirs[i]`, all as one vmapped program; returns their results.

    Workdirs whose run is done keep their results; the others train (or resume) together.
    Raises what `train_and_evaluate` raises, and `GroupError` for configs that differ in more than
    `VALUE_KEYS` or workdirs without a common checkpoint step.
    """
    if not configs or len(configs) != len(workdirs):
        raise ValueError(f"{len(configs)} configs for {len(workdirs)} workdirs")
    configs = [with_defaults(config) for config in configs]
    loads = dataset is None
    if len({program_key(config, data_from_config=loads) for config in configs}) > 1:
        raise GroupError(f"configs differ in more than {list(VALUE_KEYS)}: "
                         f"{_differing_keys(configs, loads)}")
    for config in configs:
        validate_config(config, dataset=dataset)
    workdirs = [Path(workdir) for workdir in workdirs]
    if len({workdir.resolve() for workdir in workdirs}) < len(workdirs):
        raise GroupError("a workdir appears twice in the group")
    with contextlib.ExitStack() as stack:
        for workdir, config in zip(workdirs, configs, strict=True):
            stack.enter_context(WorkdirLock(workdir))
            prepare_workdir(workdir, config, overwrite=overwrite)
        results = [_finished_results(workdir) for workdir in workdirs]
        pending = [i for i, result in enumerate(results) if result is None]
        if pending:
            stop = stack.enter_context(StopRequests())
            trained = _run([configs[i] for i in pending], [workdirs[i] for i in pending],
                           dataset, stop)
            for i, result in zip(pending, trained, strict=True):
                results[i] = result
        return results


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


def stack_states(states: Sequence[TrainState]) -> TrainState:
    """M states → one state whose every leaf has a leading model axis of size M."""
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *states)


def unstack_state(state: TrainState, index: int) -> TrainState:
    """Model `index` of a stacked state."""
    return jax.tree_util.tree_map(lambda leaf: leaf[index], state)


def common_resume_step(checkpointers: Sequence[Checkpointer]) -> int | None:
    """The step the group resumes from: the newest step of which every model holds a
    checkpoint; None (start again) if some model has none."""
    latest = [checkpointer.latest_step() for checkpointer in checkpointers]
    if any(step is None for step in latest):
        return None
    common = min(latest)
    missing = [str(c.directory.parent) for c in checkpointers if common not in c.all_steps()]
    if missing:
        raise GroupError(f"cannot resume these trials together: {missing} hold no checkpoint of "
                         f"step {common}; resume them one by one")
    return common


def _run(configs: list[ml_collections.ConfigDict], workdirs: list[Path], dataset: Any,
         stop: StopRequests) -> list[dict[str, Any]]:
    if dataset is None:
        dataset = load_for_config(configs[0])
    network = validate_config(configs[0], dataset=dataset)
    config = configs[0]
    steps_per_epoch = len(dataset.train_labels) // config.batch_size
    strategy = pick_strategy(config.strategy)
    chunk_steps = 1 if strategy == "step" else min(config.log_every_steps, steps_per_epoch)
    rows = shape_table(network, dataset.image_shape)
    checkpointers: list[Checkpointer] = []
    logs: list[MetricsLog] = []
    try:
        for workdir, model_config in zip(workdirs, configs, strict=True):
            checkpointers.append(Checkpointer(workdir, keep=model_config.checkpoint_keep))
        start = common_resume_step(checkpointers)
        states, histories = [], []
        for workdir, model_config, checkpointer in zip(workdirs, configs, checkpointers,
                                                       strict=True):
            log = MetricsLog(workdir, resume_step=start)
            logs.append(log)
            state = create_state(network, model_config, dataset.image_shape, steps_per_epoch)
            if start is None:
                log.truncate_after(-1)
                log.write("shapes", 0, table=[row.as_dict() for row in rows])
                histories.append([])
            else:
                state = checkpointer.restore(state, start)
                histories.append(_epochs(log.truncate_after(start)))
            states.append(state)
        print(f"{dataset.describe()}\n{format_table(rows)}")
        print(f"devices: {describe_devices()}; {len(configs)} models in one vmapped program; "
              f"strategy: {strategy}; {steps_per_epoch} steps/epoch of {config.batch_size}"
              + (f"; resuming from step {start}" if start is not None else ""))
        train_images, train_labels = jax.device_put((dataset.train_images, dataset.train_labels))
        val = eval_set(dataset.val_images, dataset.val_labels, config.eval_batch_size, None)
        test = eval_set(dataset.test_images, dataset.test_labels, config.eval_batch_size, None)
        contexts = [
            RunContext(config=model_config, workdir=workdir, network=network, mesh=None,
                       train_images=train_images, train_labels=train_labels, val=val, test=test,
                       steps_per_epoch=steps_per_epoch, chunk_steps=chunk_steps, log=log)
            for model_config, workdir, log in zip(configs, workdirs, logs, strict=True)
        ]
        for workdir in workdirs:
            write_status(workdir, "running", step=start or 0, pid=os.getpid(), vmapped=True)
        group = _Group(contexts, checkpointers, histories, stop)
        outcomes = group.train(stack_states(states))
        for workdir, outcome in zip(workdirs, outcomes, strict=True):
            outcome.update(params=sum(r.params for r in rows), macs=sum(r.macs for r in rows),
                           vmapped_models=len(configs))
            atomic_write_json(workdir / "results.json", outcome)
            write_status(workdir, outcome["status"],
                         **{k: outcome[k] for k in ("reason", "step") if k in outcome})
        return outcomes
    except OSError as error:  # disk full, workdir removed or made read-only meanwhile
        for workdir in workdirs:
            with contextlib.suppress(OSError):
                write_status(workdir, "failed", reason=str(error))
        raise workdir_failure(workdirs[0], error) from error
    finally:
        for resource in (*checkpointers, *logs):
            with contextlib.suppress(OSError):
                resource.close()


_group_is_finite = jax.jit(jax.vmap(_state_is_finite))


class _Group:
    """The training loop of `train_and_evaluate` over a stacked state, bookkeeping per model."""

    def __init__(self, contexts: list[RunContext], checkpointers: list[Checkpointer],
                 histories: list[list[dict[str, Any]]], stop: StopRequests):
        self.contexts, self.checkpointers = contexts, checkpointers
        self.histories, self.stop = histories, stop
        self.config = contexts[0].config
        self.alive = np.ones(len(contexts), bool)
        self.outcomes: list[dict[str, Any] | None] = [None] * len(contexts)

    def _diverge(self, index: int, step: int, reason: str) -> None:
        context = self.contexts[index]
        self.alive[index] = False
        context.log.write("diverged", step, reason=reason)
        self.outcomes[index] = _summary(_epochs(read_jsonl(context.log.path)), status="diverged",
                                        reason=reason, step=step)
        print(f"{context.workdir}: diverged: {reason}", file=sys.stderr)

    def _check_finite(self, state: TrainState, step: int) -> None:
        finite = np.asarray(jax.device_get(_group_is_finite(state)))
        for index in np.flatnonzero(self.alive & ~finite):
            rate = self.contexts[index].config.learning_rate
            self._diverge(int(index), step, f"the training loss or the parameters became NaN or "
                                            f"inf by step {step} (learning rate {rate})")

    def _save(self, state: TrainState, scores: dict[int, float] | None = None) -> None:
        for index in np.flatnonzero(self.alive):
            score = None if scores is None else scores[int(index)]
            self.checkpointers[index].save(unstack_state(state, int(index)), score=score)

    def _compile(self, state: TrainState, orders: jax.Array, sizes: set[int]):
        started = time.perf_counter()
        context, config = self.contexts[0], self.config
        programs = {}
        for num_steps in sorted(sizes):
            jitted = compiled.vmapped_train_steps(
                context.network, config.loss, config.optimizer, config.schedule,
                config.batch_size, num_steps)
            programs[num_steps] = jitted.lower(state, context.train_images, context.train_labels,
                                               orders, jnp.int32(0)).compile()
        return programs, time.perf_counter() - started

    def _orders(self, epoch: int) -> jax.Array:
        count = len(self.contexts[0].train_labels)
        return jnp.stack([
            _epoch_order(jax.random.fold_in(jax.random.key(context.config.seed), 1), epoch, count)
            for context in self.contexts])

    def train(self, state: TrainState) -> list[dict[str, Any]]:
        config, context = self.config, self.contexts[0]
        spe, chunk = context.steps_per_epoch, context.chunk_steps
        total_steps = spe * config.num_epochs
        step = int(jax.device_get(state.step[0]))
        programs, compile_seconds = {}, 0.0
        if step < total_steps:
            sizes = {chunk} | ({spe % chunk} if spe % chunk else set())
            programs, compile_seconds = self._compile(state, self._orders(0), sizes)
        fault = _fault_injection()
        progress = Progress(total_steps, step, enabled=config.progress)
        try:
            for epoch in range(step // spe, config.num_epochs):
                if not self.alive.any():
                    break
                orders = self._orders(epoch)
                batch = first_batch = step - epoch * spe
                epoch_start = time.perf_counter()
                while batch < spe:
                    if self.stop.requested:
                        return self._interrupt(state, step)
                    num_steps = min(chunk - batch % chunk, spe - batch)
                    state = programs[num_steps](state, context.train_images,
                                                context.train_labels, orders, jnp.int32(batch))
                    batch, step = batch + num_steps, step + num_steps
                    checked = _crossed(step, num_steps, config.nan_check_every) or batch == spe
                    if checked:
                        self._check_finite(state, step)
                    if _crossed(step, num_steps, config.log_every_steps):
                        self._log_train(state, epoch, step, progress)
                    else:
                        progress.update(step)
                    if batch < spe and _crossed(step, num_steps, config.checkpoint_every_steps):
                        if not checked:
                            self._check_finite(state, step)
                        self._save(state)
                    if fault is not None and _crossed(step, num_steps, fault[0]) \
                            and step - num_steps < fault[0]:
                        jax.block_until_ready(state)
                        os.kill(os.getpid(), fault[1])
                jax.block_until_ready(state)
                seconds = time.perf_counter() - epoch_start
                scores = self._end_epoch(state, epoch, step, seconds,
                                         (spe - first_batch) * config.batch_size, progress)
                state = reset_epoch_sums(state)
                self._save(state, scores)
        finally:
            progress.close()
        for index in np.flatnonzero(self.alive):
            results = _summary(self.histories[index], status="done", step=step)
            results.update(compile_time_s=compile_seconds)
            if self.histories[index]:
                results["model_images_per_second"] = \
                    self.histories[index][-1].get("model_images_per_second")
            _finish(self.contexts[index], unstack_state(state, int(index)),
                    self.histories[index], results)
            self.outcomes[index] = results
        return list(self.outcomes)

    def _log_train(self, state: TrainState, epoch: int, step: int, progress: Progress) -> None:
        sums = jax.device_get(state.epoch_sums)
        for index in np.flatnonzero(self.alive):
            seen = max(int(sums["count"][index]), 1)
            loss = float(sums["loss"][index]) / seen
            if not np.isfinite(loss):
                self._diverge(int(index), step, f"the training loss became {loss} by step {step}")
                continue
            self.contexts[index].log.write("train", step, epoch=epoch + 1, loss=loss,
                                           accuracy=float(sums["correct"][index]) / seen)
        progress.update(step, models=int(self.alive.sum()))

    def _evaluate(self, params, split: EvalSet) -> tuple[np.ndarray, np.ndarray]:
        """(mean loss, accuracy) of every model on `split`, each (M,); NaN if it is empty."""
        models = len(self.contexts)
        if split.size == 0:
            return np.full(models, np.nan), np.full(models, np.nan)
        run = compiled.vmapped_eval_chunk(self.contexts[0].network, self.config.loss,
                                          len(split.labels) // split.chunks)
        loss_sum, hits = jnp.zeros(models), jnp.zeros(models)
        for index in range(split.chunks):
            chunk_loss, chunk_hits = run(params, split.images, split.labels, split.weights, index)
            loss_sum, hits = loss_sum + chunk_loss, hits + chunk_hits
        loss_sum, hits = jax.device_get((loss_sum, hits))
        return np.asarray(loss_sum) / split.size, np.asarray(hits) / split.size

    def _end_epoch(self, state: TrainState, epoch: int, step: int, seconds: float, images: int,
                   progress: Progress) -> dict[int, float]:
        """Evaluates every model, writes its epoch record; returns {model: checkpoint score}."""
        sums = jax.device_get(state.epoch_sums)
        context = self.contexts[0]
        val_loss, val_accuracy = self._evaluate(state.params, context.val)
        test_loss, test_accuracy = self._evaluate(state.params, context.test)
        scores = {}
        for index in np.flatnonzero(self.alive):
            count = max(int(sums["count"][index]), 1)
            record = self.contexts[index].log.write(
                "epoch", step, epoch=epoch + 1,
                train_loss=float(sums["loss"][index]) / count,
                train_accuracy=float(sums["correct"][index]) / count,
                val_loss=_none_if_nan(float(val_loss[index])),
                val_accuracy=_none_if_nan(float(val_accuracy[index])),
                test_loss=_none_if_nan(float(test_loss[index])),
                test_accuracy=_none_if_nan(float(test_accuracy[index])),
                epoch_time_s=seconds, images_per_second=images / max(seconds, 1e-9),
                model_images_per_second=len(self.contexts) * images / max(seconds, 1e-9),
            )
            self.histories[index].append(record)
            scores[int(index)] = _selection_score(record)
        alive_val = val_accuracy[self.alive & ~np.isnan(val_accuracy)]
        progress.update(step, models=int(self.alive.sum()),
                        best_val=round(float(alive_val.max()), 4) if alive_val.size else None,
                        model_img_s=round(len(self.contexts) * images / max(seconds, 1e-9)))
        return scores

    def _interrupt(self, state: TrainState, step: int) -> list[dict[str, Any]]:
        jax.block_until_ready(state)
        self._check_finite(state, step)
        self._save(state)
        for index in np.flatnonzero(self.alive):
            self.outcomes[index] = _summary(self.histories[index], status="interrupted",
                                            step=step)
        print(f"\nstopped by {self.stop.signal_name} at step {step}; checkpoints saved; rerun "
              f"the same command to go on", file=sys.stderr)
        return list(self.outcomes)
