"""What a group of runs trains with: `prepare(configs, dataset)` → an `Experiment`, and the
compiled step it runs (`train_steps`, `eval_chunk`).

A lone run is a group of one. An `Experiment` holds the data on the device(s), the formulations
picked for this backend, the chunk length, the state (restored by `resume` when given), each run's
epoch records and outcome, and the compiled chunks of steps; `cnn_jax.train.run.fit` trains it.
The one place where a lone run and a vmapped group differ is `Placement`: a lone run's batch is
sharded over the data mesh and its state is one model's; a vmapped group's state has a leading
model axis split over the devices and its programs are `jax.vmap`-ed.

Data stays on the device: a step cuts its batch with `lax.dynamic_slice` from the epoch's order,
so it transfers nothing from the host. The step builders are cached on their static description,
so runs that differ only in values (learning rate, λ, seed) share one program.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import Mesh

from cnn_jax.config import build_network
from cnn_jax.data import Dataset
from cnn_jax.layers.dropout import example_keys
from cnn_jax.layers.formulations import LAYERS, Formulation, choose, pick_strategy
from cnn_jax.losses import correct, get_loss, l2_penalty
from cnn_jax.network import Network
from cnn_jax.optim import learning_rate_at, make_optimizer
from cnn_jax.train import results
from cnn_jax.train.devices import (
    device_count,
    make_mesh,
    model_mesh,
    replicate,
    shard_batch,
    shard_models,
)
from cnn_jax.train.inputs import EvalSet, eval_set
from cnn_jax.train.state import (
    TrainState,
    create_state,
    reset_epoch_sums,
    stack_states,
    unstack_state,
)

# (templates, one per run) -> (the step restored, or None to start anew; the states to start from)
Resume = Callable[[list[TrainState]], tuple[int | None, list[TrainState]]]


@dataclasses.dataclass(frozen=True)
class Placement:
    """The one seam between a lone run (vmapped=False: its batch sharded over `mesh`, axis
    'data') and a vmapped group (every leaf of the state has a leading model axis, the models
    split over `mesh`, axis 'models')."""

    vmapped: bool
    mesh: Mesh | None

    @classmethod
    def default(cls, models: int, vmapped: bool) -> Placement:
        """A lone run's batch over every local device; a vmapped group's models over the most
        devices that split them evenly."""
        return cls(vmapped, model_mesh(models) if vmapped else make_mesh())

    @property
    def batch_mesh(self) -> Mesh | None:
        """The mesh a batch is sharded over inside a step (a vmapped group's models are split
        instead)."""
        return None if self.vmapped else self.mesh

    @property
    def batch_devices(self) -> int:
        return device_count(self.batch_mesh)

    def place(self, states: Sequence[TrainState]) -> TrainState:
        if self.vmapped:
            return shard_models(stack_states(states), self.mesh)
        return replicate(states[0], self.mesh)

    def member(self, state: TrainState, index: int) -> TrainState:
        return unstack_state(state, index) if self.vmapped else state

    def per_model(self, tree) -> Any:
        """`tree` on the host, every leaf an (M,) array."""
        return jax.tree_util.tree_map(lambda leaf: np.atleast_1d(np.asarray(leaf)),
                                      jax.device_get(tree))

    def orders(self, keys: Sequence[jax.Array], epoch: int, count: int) -> jax.Array:
        if not self.vmapped:
            return jitted_epoch_order(keys[0], epoch, count)
        return shard_models(jnp.stack([jitted_epoch_order(key, epoch, count) for key in keys]),
                            self.mesh)


@dataclasses.dataclass(eq=False)
class Experiment:
    """Runs that train together (one model, or M same-shape models as one vmapped program)."""

    configs: list[ml_collections.ConfigDict]
    network: Network
    placement: Placement
    train_images: jax.Array
    train_labels: jax.Array
    val: EvalSet
    test: EvalSet
    steps_per_epoch: int
    chunk_steps: int
    train_formulation: Formulation
    eval_formulation: Formulation
    data_keys: list[jax.Array]
    state: TrainState
    step: int  # steps taken (host copy of state.step)
    resumed: bool  # the state came from a checkpoint
    history: list[list[dict[str, Any]]]  # each run's epoch records
    outcomes: list[dict[str, Any] | None]  # each run's results once it ended (diverged, …)
    compile_seconds: float = 0.0
    programs: dict[int, Any] = dataclasses.field(default_factory=dict)
    diverged: list[tuple[int, int, str]] = dataclasses.field(default_factory=list)
    _memo: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def config(self) -> ml_collections.ConfigDict:
        """The settings the runs share (all but the per-run values: learning rate, λ, seed…)."""
        return self.configs[0]

    def training(self) -> list[int]:
        """The indices of the runs still training."""
        return [index for index, outcome in enumerate(self.outcomes) if outcome is None]

    def advance(self, state: TrainState, num_steps: int) -> None:
        """The state after `num_steps` more steps."""
        self.state, self.step = state, self.step + num_steps
        self._memo.clear()

    def reset_epoch_sums(self) -> None:
        """Zeroes the running sums at an epoch's end (the finite check of the step still holds)."""
        self.state = reset_epoch_sums(self.state)
        self._memo.pop("means", None)

    def program(self, num_steps: int):
        """The compiled chunk of `num_steps` steps: (state, images, labels, orders, first batch)
        → state; compiled on first use (`compile` does it ahead for an epoch's lengths)."""
        if num_steps not in self.programs:
            config = self.config
            self.programs[num_steps] = train_steps(
                self.network, config.loss, config.optimizer, config.schedule, config.batch_size,
                num_steps, self.placement.batch_mesh, self.train_formulation,
                models=self.placement.vmapped).lower(
                self.state, self.train_images, self.train_labels, self.orders(0),
                jnp.int32(0)).compile()
        return self.programs[num_steps]

    def compile(self) -> float:
        """Compiles the chunk lengths an epoch needs; returns the seconds spent (also added to
        `compile_seconds`)."""
        spe, chunk = self.steps_per_epoch, self.chunk_steps
        jax.block_until_ready(self.orders(0))
        started = time.perf_counter()
        for num_steps in sorted({chunk} | ({spe % chunk} if spe % chunk else set())):
            self.program(num_steps)
        seconds = time.perf_counter() - started
        self.compile_seconds += seconds
        return seconds

    def orders(self, epoch: int) -> jax.Array:
        """The data order of `epoch`, (N,) or (M, N): a pure function of each run's seed."""
        return self.placement.orders(self.data_keys, epoch, len(self.train_labels))

    def member(self, index: int) -> TrainState:
        """Run `index`'s own state."""
        return self.placement.member(self.state, index)

    def evaluate(self, params, split: EvalSet) -> tuple[np.ndarray, np.ndarray]:
        """(mean loss, accuracy) of every run on `split`, each (M,); NaN if it is empty."""
        models = len(self.configs)
        if split.size == 0:
            return np.full(models, np.nan), np.full(models, np.nan)
        run = eval_chunk(self.network, self.config.loss, len(split.labels) // split.chunks,
                         self.placement.batch_mesh, self.eval_formulation,
                         models=self.placement.vmapped)
        loss_sum, hits = 0.0, 0.0
        for index in range(split.chunks):
            chunk_loss, chunk_hits = run(params, split.images, split.labels, split.weights, index)
            loss_sum, hits = loss_sum + chunk_loss, hits + chunk_hits
        loss_sum, hits = self.placement.per_model((loss_sum, hits))
        return loss_sum / split.size, hits / split.size

    def epoch_means(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean training loss, accuracy) of the epoch so far, each (M,); fetched once a step."""
        if "means" not in self._memo:
            sums = self.placement.per_model(self.state.epoch_sums)
            seen = np.maximum(sums["count"], 1)
            self._memo["means"] = (sums["loss"] / seen, sums["correct"] / seen)
        return self._memo["means"]

    def check_finite(self) -> None:
        """Marks every run whose loss, parameters or optimizer state hold NaN/inf as diverged
        (checked once a step)."""
        if "finite" in self._memo:
            return
        finite = self.placement.per_model(state_finite(self.state, self.placement.vmapped))
        self._memo["finite"] = finite
        for index in self.training():
            if not finite[index]:
                rate = self.configs[index].learning_rate
                self.diverge(index, f"the training loss or the parameters became NaN or inf by "
                                    f"step {self.step} (learning rate {rate})")

    def diverge(self, index: int, reason: str) -> None:
        """Ends run `index` as diverged (its results from its records); the others go on. The
        hooks hear of it through `diverged`."""
        self.outcomes[index] = results.summarize(self.history[index], status="diverged",
                                                 reason=reason, step=self.step)
        self.diverged.append((index, self.step, reason))

    def describe(self) -> str:
        """Where and how it trains, in one line."""
        where = f"strategy: {'step' if self.chunk_steps == 1 else 'scan'}; formulation: "
        formulation = self.train_formulation
        where += f"{formulation.conv} conv, {formulation.pool} pool"
        if formulation.microbatches > 1:
            where += f", {formulation.microbatches} micro-batches"
        if self.placement.vmapped:
            mesh = self.placement.mesh
            where = (f"{len(self.configs)} models in one vmapped program" + (
                f", split over {mesh.size} devices" if mesh is not None else "") + "; " + where)
        return f"{where}; {self.steps_per_epoch} steps/epoch of {self.config.batch_size}"


def prepare(configs: ml_collections.ConfigDict | Sequence[ml_collections.ConfigDict],
            dataset: Dataset, *, vmapped: bool | None = None, placement: Placement | None = None,
            resume: Resume | None = None, network: Network | None = None) -> Experiment:
    """The `Experiment` that trains `configs` (same shapes; they may differ in the per-run values)
    on `dataset`.

    vmapped: one vmapped program of every config's model (default: when there are several).
    placement: where it runs (default: `Placement.default`; `Placement(vmapped, None)`: the
      default device alone).
    resume: gives the states to start from (e.g. `Checkpoints.restore`); default: fresh states
      from each config's seed. network: the configs' network (default: built from the config).
    """
    configs = [configs] if isinstance(configs, ml_collections.ConfigDict) else list(configs)
    if placement is None:
        vmapped = len(configs) > 1 if vmapped is None else vmapped
        placement = Placement.default(len(configs), vmapped)
    mesh = placement.mesh
    config = configs[0]
    network = network or build_network(config)
    steps_per_epoch = len(dataset.train_labels) // config.batch_size
    backend, plans = jax.default_backend(), network.plan(dataset.image_shape)
    batch = config.batch_size // placement.batch_devices
    strategy = pick_strategy(config.strategy, backend, batch_size=batch, plans=plans,
                             conv=config.formulation.conv)
    choice = dict(**config.formulation.to_dict(), plans=plans, backend=backend,
                  devices=placement.batch_devices)
    templates = [create_state(network, c, dataset.image_shape, steps_per_epoch) for c in configs]
    start, states = (None, templates) if resume is None else resume(templates)
    train_images, train_labels = replicate((dataset.train_images, dataset.train_labels), mesh)
    return Experiment(
        configs=configs, network=network, placement=placement, train_images=train_images,
        train_labels=train_labels,
        val=eval_set(dataset.val_images, dataset.val_labels, config.eval_batch_size, mesh),
        test=eval_set(dataset.test_images, dataset.test_labels, config.eval_batch_size, mesh),
        steps_per_epoch=steps_per_epoch,
        chunk_steps=1 if strategy == "step" else min(config.log_every_steps, steps_per_epoch),
        train_formulation=choose(**choice, batch_size=batch, training=True,
                                 scan=strategy == "scan"),
        eval_formulation=choose(**choice, batch_size=config.eval_batch_size, training=False),
        data_keys=[jax.random.fold_in(jax.random.key(c.seed), 1) for c in configs],
        state=placement.place(states), step=start or 0, resumed=start is not None,
        history=[[] for _ in configs], outcomes=[None for _ in configs])


def epoch_order(data_key: jax.Array, epoch: int | jax.Array, num_examples: int) -> jax.Array:
    """The shuffled order of the training examples in `epoch` (a pure function of key, epoch)."""
    return jax.random.permutation(jax.random.fold_in(data_key, epoch), num_examples)


jitted_epoch_order = jax.jit(epoch_order, static_argnums=2)


@functools.lru_cache(maxsize=64)
def train_steps(
    network: Network, loss: str, optimizer: str, schedule: str, batch_size: int, num_steps: int,
    mesh: Mesh | None = None, formulation: Formulation = LAYERS, *, unroll: int = 1,
    models: bool = False,
):
    """jit(run)(state, images, labels, order, first_batch) -> state after `num_steps` steps.

    images (N, H, W, C) and labels (N,) stay on the device; batch b uses the examples
    order[b·batch_size : (b+1)·batch_size]. The state argument is donated. unroll: `lax.scan`'s
    unroll when num_steps > 1. models: every leaf of `state` and `order` (M, N) has a leading
    model axis (each model its own parameters, learning rate, λ, seed and data order); images,
    labels and first_batch are shared; `mesh` must then be None (the models' placement decides).
    `formulation` says how conv and pool layers are computed and into how many micro-batches a
    step's gradient is split.
    """
    loss_fn = get_loss(loss)
    tx = make_optimizer(optimizer)
    has_dropout = any(layer.kind == "dropout" for layer in network.layers)
    micro = formulation.microbatches

    def data_loss_and_grads(params, x, y, key):
        """Mean loss, its gradient and the logits, over `micro` independent micro-batches;
        dropout draws from one key per example (the same masks for any split)."""
        keys = example_keys(key, batch_size) if has_dropout else None

        def part(x, y, keys):
            def objective(params):
                logits = network.apply(params, x, train=True, key=keys, formulation=formulation)
                return loss_fn(logits, y), logits
            return jax.value_and_grad(objective, has_aux=True)(params)

        if micro == 1:
            (loss, logits), grads = part(x, y, keys)
            return loss, grads, logits
        size = batch_size // micro
        cuts = [slice(i * size, (i + 1) * size) for i in range(micro)]
        parts = [part(x[cut], y[cut], None if keys is None else keys[cut]) for cut in cuts]
        loss = sum(p[0][0] for p in parts) / micro
        grads = jax.tree_util.tree_map(lambda *g: sum(g) / micro, *(p[1] for p in parts))
        return loss, grads, jnp.concatenate([p[0][1] for p in parts])

    def one_step(state: TrainState, images, labels, order, batch_index) -> TrainState:
        index = jax.lax.dynamic_slice_in_dim(order, batch_index * batch_size, batch_size)
        x = shard_batch(jnp.take(images, index, axis=0), mesh)
        y = jnp.take(labels, index, axis=0)
        dropout_key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
        data_loss, grads, logits = data_loss_and_grads(state.params, x, y, dropout_key)
        penalty = jax.grad(l2_penalty)(state.params, state.hyper["l2"])
        grads = jax.tree_util.tree_map(jnp.add, grads, penalty)
        # the update uses the scheduled rate; the state keeps the base rate (its one slot)
        base = state.opt_state.hyperparams
        rate = learning_rate_at(schedule, state.step, {
            "learning_rate": base["learning_rate"], "total_steps": state.hyper["total_steps"]})
        opt_state = state.opt_state._replace(hyperparams={**base, "learning_rate": rate})
        updates, opt_state = tx.update(grads, opt_state, state.params)
        opt_state = opt_state._replace(hyperparams={**opt_state.hyperparams,
                                                    "learning_rate": base["learning_rate"]})
        sums = state.epoch_sums
        return state.replace(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            opt_state=opt_state,
            epoch_sums={
                "loss": sums["loss"] + data_loss * batch_size,
                "correct": sums["correct"] + correct(logits, y),
                "count": sums["count"] + batch_size,
            },
        )

    def run(state, images, labels, order, first_batch):
        if num_steps == 1:
            return one_step(state, images, labels, order, first_batch)

        def body(carry, offset):
            return one_step(carry, images, labels, order, first_batch + offset), None

        state, _ = jax.lax.scan(body, state, jnp.arange(num_steps), unroll=unroll)
        return state

    if models:
        run = jax.vmap(run, in_axes=(0, None, None, 0, None))
    return jax.jit(run, donate_argnums=(0,))


@functools.lru_cache(maxsize=64)
def eval_chunk(network: Network, loss: str, chunk_size: int, mesh: Mesh | None = None,
               formulation: Formulation = LAYERS, *, models: bool = False):
    """jit(run)(params, images, labels, weights, chunk) -> (Σ weight·loss, Σ weight·correct).

    Evaluates examples [chunk·chunk_size, (chunk+1)·chunk_size); padding has weight 0. models:
    `params` has a leading model axis and both sums are (M,).
    """
    loss_fn = get_loss(loss)

    def run(params, images, labels, weights, chunk):
        start = chunk * chunk_size
        x = shard_batch(jax.lax.dynamic_slice_in_dim(images, start, chunk_size), mesh)
        y = jax.lax.dynamic_slice_in_dim(labels, start, chunk_size)
        w = jax.lax.dynamic_slice_in_dim(weights, start, chunk_size)
        logits = network.apply(params, x, formulation=formulation)
        losses = jax.vmap(lambda z, t: loss_fn(z[None], t[None]))(logits, y)
        hits = (jnp.argmax(logits, axis=-1) == y).astype(jnp.float32)
        return jnp.sum(w * losses), jnp.sum(w * hits)

    if models:
        run = jax.vmap(run, in_axes=(0, None, None, None, None))
    return jax.jit(run)


def all_finite(tree) -> jax.Array:
    """True when no leaf of `tree` holds a NaN or an infinity."""
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(leaf.dtype, jnp.floating)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


@functools.partial(jax.jit, static_argnums=1)
def state_finite(state: TrainState, models: bool = False) -> jax.Array:
    """No NaN/inf in the epoch's loss sum, the parameters or the optimizer state: () or, with
    `models`, (M,) for a stacked state."""
    def one(state):
        return jnp.isfinite(state.epoch_sums["loss"]) & all_finite((state.params,
                                                                    state.opt_state))
    return jax.vmap(one)(state) if models else one(state)
