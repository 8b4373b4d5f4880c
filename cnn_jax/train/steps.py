"""The compiled programs of training: a chunk of SGD steps, and the evaluation of a chunk.

Data stays on the device: a step cuts its batch with `lax.dynamic_slice` from the epoch's order,
so it transfers nothing from the host. `train_steps(...)` runs `num_steps` consecutive steps —
one jitted step per call, or several fused by `lax.scan` — of one model (its batch sharded over
`mesh`) or, with `models=True`, of a stack of same-shape models as one `jax.vmap`-ed program.
`formulation` (`cnn_jax.formulations.choose`) says how conv and pool layers are computed and
how many micro-batches a step's gradient is split into. The builders are cached on their static
description, so runs that differ only in values (learning rate, λ, seed) share one program.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from cnn_jax.layers.dropout import example_keys
from cnn_jax.layers.formulations import LAYERS, Formulation
from cnn_jax.losses import correct, get_loss, l2_penalty
from cnn_jax.network import Network
from cnn_jax.optim import learning_rate_at, make_optimizer
from cnn_jax.train.devices import shard_batch
from cnn_jax.train.state import TrainState


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
        hyperparams = {
            **state.opt_state.hyperparams,
            "learning_rate": learning_rate_at(schedule, state.step, state.hyper),
        }
        opt_state = state.opt_state._replace(hyperparams=hyperparams)
        updates, opt_state = tx.update(grads, opt_state, state.params)
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


def state_is_finite(state: TrainState) -> jax.Array:
    """No NaN/inf in the epoch's loss sum, the parameters or the optimizer state."""
    return jnp.isfinite(state.epoch_sums["loss"]) & all_finite((state.params, state.opt_state))


jitted_state_is_finite = jax.jit(state_is_finite)
models_are_finite = jax.jit(jax.vmap(state_is_finite))  # (M,) for a stacked state
