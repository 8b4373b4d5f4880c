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
* no data-parallel mesh: with several devices, the models are split over them (axis 'models';
  `cnn_jax.train.devices.model_mesh`), each device training whole models; one data set;
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh

from cnn_jax.config import validate_config, with_defaults
from cnn_jax.summary import format_table, shape_table
from cnn_jax.train import steps as compiled
from cnn_jax.train.checkpoints import Checkpointer
from cnn_jax.train.devices import describe_devices, model_mesh, replicate, shard_models
from cnn_jax.train.inputs import EvalSet, eval_set, load_for_config
from cnn_jax.train.interrupts import StopRequests
from cnn_jax.train.logs import MetricsLog, atomic_write_json, read_jsonl, write_status
from cnn_jax.train.loop import pick_strategy
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
    RunContext,
    TrainingLoop,
    jitted_epoch_order,
    state_is_finite,
)
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
        results = [finished_results(workdir) for workdir in workdirs]
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
                histories.append(epoch_records(log.truncate_after(start)))
            states.append(state)
        print(f"{dataset.describe()}\n{format_table(rows)}")
        mesh = model_mesh(len(configs))
        print(f"devices: {describe_devices()}; {len(configs)} models in one vmapped program"
              + (f", split over {mesh.size} devices" if mesh is not None else "")
              + f"; strategy: {strategy}; {steps_per_epoch} steps/epoch of {config.batch_size}"
              + (f"; resuming from step {start}" if start is not None else ""))
        train_images, train_labels = replicate(
            (dataset.train_images, dataset.train_labels), mesh)
        val = eval_set(dataset.val_images, dataset.val_labels, config.eval_batch_size, mesh)
        test = eval_set(dataset.test_images, dataset.test_labels, config.eval_batch_size, mesh)
        contexts = [
            RunContext(config=model_config, workdir=workdir, network=network, mesh=None,
                       train_images=train_images, train_labels=train_labels, val=val, test=test,
                       steps_per_epoch=steps_per_epoch, chunk_steps=chunk_steps, log=log)
            for model_config, workdir, log in zip(configs, workdirs, logs, strict=True)
        ]
        for workdir in workdirs:
            write_status(workdir, "running", step=start or 0, pid=os.getpid(), vmapped=True)
        group = _Group(contexts, checkpointers, histories, stop, mesh)
        outcomes = group.run(shard_models(stack_states(states), mesh))
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


_group_is_finite = jax.jit(jax.vmap(state_is_finite))


class _Group(TrainingLoop):
    """`TrainingLoop` over a stacked state, with the bookkeeping of every model: a model that
    diverges is recorded and left out of logs and checkpoints while the others go on."""

    def __init__(self, contexts: list[RunContext], checkpointers: list[Checkpointer],
                 histories: list[list[dict[str, Any]]], stop: StopRequests, mesh: Mesh | None):
        super().__init__(contexts[0], stop)
        self.mesh = mesh  # the model axis split over devices, or None
        self.contexts, self.checkpointers, self.histories = contexts, checkpointers, histories
        self.alive = np.ones(len(contexts), bool)
        self.outcomes: list[dict[str, Any] | None] = [None] * len(contexts)
        self.data_keys = [jax.random.fold_in(jax.random.key(c.config.seed), 1) for c in contexts]

    def step_of(self, state: TrainState) -> int:
        return int(jax.device_get(state.step[0]))

    def orders(self, epoch: int) -> jax.Array:
        count = len(self.context.train_labels)
        return shard_models(
            jnp.stack([jitted_epoch_order(key, epoch, count) for key in self.data_keys]),
            self.mesh)

    def program(self, num_steps: int):
        config = self.config
        return compiled.vmapped_train_steps(self.context.network, config.loss, config.optimizer,
                                            config.schedule, config.batch_size, num_steps)

    def training(self) -> bool:
        return bool(self.alive.any())

    def _diverge(self, index: int, step: int, reason: str) -> None:
        context = self.contexts[index]
        self.alive[index] = False
        context.log.write("diverged", step, reason=reason)
        self.outcomes[index] = summarize(epoch_records(read_jsonl(context.log.path)),
                                         status="diverged", reason=reason, step=step)
        print(f"{context.workdir}: diverged: {reason}", file=sys.stderr)

    def check_finite(self, state: TrainState, step: int) -> None:
        finite = np.asarray(jax.device_get(_group_is_finite(state)))
        for index in np.flatnonzero(self.alive & ~finite):
            rate = self.contexts[index].config.learning_rate
            self._diverge(int(index), step, f"the training loss or the parameters became NaN or "
                                            f"inf by step {step} (learning rate {rate})")

    def save(self, state: TrainState, scores: dict[int, float] | None = None) -> None:
        for index in np.flatnonzero(self.alive):
            score = None if scores is None else scores[int(index)]
            self.checkpointers[index].save(unstack_state(state, int(index)), score=score)

    def log_train(self, state: TrainState, epoch: int, step: int, progress: Progress) -> None:
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
        run = compiled.vmapped_eval_chunk(self.context.network, self.config.loss,
                                          len(split.labels) // split.chunks)
        loss_sum, hits = jnp.zeros(models), jnp.zeros(models)
        for index in range(split.chunks):
            chunk_loss, chunk_hits = run(params, split.images, split.labels, split.weights, index)
            loss_sum, hits = loss_sum + chunk_loss, hits + chunk_hits
        loss_sum, hits = jax.device_get((loss_sum, hits))
        return np.asarray(loss_sum) / split.size, np.asarray(hits) / split.size

    def end_epoch(self, state: TrainState, epoch: int, step: int, seconds: float, images: int,
                  progress: Progress) -> TrainState:
        sums = jax.device_get(state.epoch_sums)
        val_loss, val_accuracy = self._evaluate(state.params, self.context.val)
        test_loss, test_accuracy = self._evaluate(state.params, self.context.test)
        model_rate = len(self.contexts) * images / max(seconds, 1e-9)
        scores = {}
        for index in np.flatnonzero(self.alive):
            count = max(int(sums["count"][index]), 1)
            record = self.contexts[index].log.write(
                "epoch", step, epoch=epoch + 1,
                train_loss=float(sums["loss"][index]) / count,
                train_accuracy=float(sums["correct"][index]) / count,
                val_loss=none_if_nan(float(val_loss[index])),
                val_accuracy=none_if_nan(float(val_accuracy[index])),
                test_loss=none_if_nan(float(test_loss[index])),
                test_accuracy=none_if_nan(float(test_accuracy[index])),
                epoch_time_s=seconds, images_per_second=images / max(seconds, 1e-9),
                model_images_per_second=model_rate,
            )
            self.histories[index].append(record)
            scores[int(index)] = selection_score(record)
        state = reset_epoch_sums(state)
        self.save(state, scores)
        alive_val = val_accuracy[self.alive & ~np.isnan(val_accuracy)]
        progress.update(step, models=int(self.alive.sum()),
                        best_val=round(float(alive_val.max()), 4) if alive_val.size else None,
                        model_img_s=round(model_rate))
        return state

    def interrupt(self, state: TrainState, step: int) -> list[dict[str, Any]]:
        self.check_finite(state, step)
        self.save(state)
        for index in np.flatnonzero(self.alive):
            self.outcomes[index] = summarize(self.histories[index], status="interrupted",
                                            step=step)
        print(f"\nstopped by {self.stop.signal_name} at step {step}; checkpoints saved; rerun "
              f"the same command to go on", file=sys.stderr)
        return list(self.outcomes)

    def finish(self, state: TrainState, step: int, compile_seconds: float
               ) -> list[dict[str, Any]]:
        for index in np.flatnonzero(self.alive):
            history = self.histories[index]
            results = summarize(history, status="done", step=step)
            results.update(compile_time_s=compile_seconds)
            if history:
                results["model_images_per_second"] = history[-1].get("model_images_per_second")
            finish_run(self.contexts[index], unstack_state(state, int(index)), history, results)
            self.outcomes[index] = results
        return list(self.outcomes)
