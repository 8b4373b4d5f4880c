"""Compiled training and evaluation steps over device-resident data.

Batches are cut inside the compiled function with `lax.dynamic_slice` from a per-epoch order, so
a step transfers no data from the host. `train_steps(...)` runs `num_steps` consecutive steps:
one jitted step per call (fastest on CPU) or several fused by `lax.scan` (fastest on GPU/TPU).
The builders are cached on their static description, so trials that differ only in values
(learning rate, λ, seed) reuse one compiled program.

Formulation on XLA:CPU (same function, other programs; measurements in BENCHMARKS.md):
  * the step's gradient is computed over independent micro-batches (`resolve_microbatches`),
    which XLA runs concurrently on the cores: 1.4–3× the throughput of one batch;
  * pooling is a reshape + reduction (`pool2d(impl='reshape')`): its gradient avoids XLA's
    `select_and_scatter`, the slowest op of the step on CPU;
  * in training steps, a convolution with one input channel and ≤ 4 maps is the course's sum
    over kernel offsets (`conv2d_offsets`): XLA:CPU's convolution is slowest exactly there.
Convolution as im2col + matrix product (`conv2d_im2col`) is available (conv_impl='im2col') but
loses to `lax.conv_general_dilated` once micro-batches keep both cores busy. 'auto' (the default)
picks the above on CPU and one batch with the `lax` forms elsewhere; CNN_JAX_CONV_IMPL
('xla'|'im2col'|'offsets'), CNN_JAX_POOL_IMPL ('xla'|'reshape') and CNN_JAX_MICROBATCHES
override 'auto', and the keyword arguments override both.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from cnn_jax.layers.dropout import example_keys
from cnn_jax.losses import correct, get_loss, l2_penalty
from cnn_jax.network import Network
from cnn_jax.train.devices import shard_batch
from cnn_jax.train.state import TrainState, learning_rate_at, make_optimizer

CONV_IMPLS = ("auto", "xla", "im2col", "offsets")
POOL_IMPLS = ("auto", "xla", "reshape")


def resolve_impls(conv_impl: str, pool_impl: str, batch_size: int,
                  backend: str | None = None, *, training: bool = True) -> tuple[str, str]:
    """The concrete (conv_impl, pool_impl) for 'auto' on `backend` (default: JAX's backend):
    on CPU 'offsets' convolution in training steps, 'xla' for evaluation (large chunks, where the
    offsets sum is no longer one fused pass), and reshape pooling; elsewhere the `lax` forms."""
    if conv_impl not in CONV_IMPLS:
        raise ValueError(f"unknown conv_impl {conv_impl!r}; choose one of {list(CONV_IMPLS)}")
    if pool_impl not in POOL_IMPLS:
        raise ValueError(f"unknown pool_impl {pool_impl!r}; choose one of {list(POOL_IMPLS)}")
    cpu = (backend or jax.default_backend()) == "cpu"
    if conv_impl == "auto":
        conv_impl = os.environ.get("CNN_JAX_CONV_IMPL") or (
            "offsets" if cpu and training else "xla")
    if pool_impl == "auto":
        pool_impl = os.environ.get("CNN_JAX_POOL_IMPL") or ("reshape" if cpu else "xla")
    if conv_impl not in CONV_IMPLS[1:] or pool_impl not in POOL_IMPLS[1:]:
        raise ValueError(f"bad implementation from the environment: {conv_impl!r}, {pool_impl!r}")
    return conv_impl, pool_impl


MAX_MICROBATCHES = 8  # 16 runs ≈ 7% faster at batch 1024 but compiles in 2.2 s instead of 1.3
DENSE_SHARE_LIMIT = 0.5


def dense_share(network: Network, input_shape: tuple[int, ...]) -> float:
    """The fraction of a forward pass's multiply-adds spent in dense (fully connected) layers."""
    plans = network.plan(tuple(input_shape))
    total = sum(plan.macs for plan in plans)
    return sum(plan.macs for plan in plans if plan.kind == "dense") / max(total, 1)


def resolve_microbatches(requested: int, batch_size: int, mesh: Mesh | None = None,
                         backend: str | None = None, network: Network | None = None,
                         input_shape: tuple[int, ...] | None = None) -> int:
    """How many equal micro-batches a step's gradient is computed in (0 → auto).

    On XLA:CPU the gradients of independent micro-batches run concurrently on the cores, where
    one batch keeps about one core busy: 'auto' splits the batch into the most parts (≤ 8) that
    keep micro-batches of at least min(16, batch/2) examples (10 → 2×5, 128 → 8×16,
    1024 → 8×128). That wins where convolutions dominate; where dense layers do half or more of
    the multiply-adds (given `network` and `input_shape`), smaller matrix products and summing
    large gradients lose (Nielsen's FC1000 net: 2,610 → 2,371 img/s at batch 10, 3,462 → 2,675 at
    128), so one batch. Elsewhere, and with a device mesh, one batch. Dropout masks come from one
    key per example, so they do not depend on the split. CNN_JAX_MICROBATCHES overrides.
    """
    if requested < 0:
        raise ValueError(f"microbatches must be >= 0 (0: auto), got {requested}")
    if requested == 0:
        requested = int(os.environ.get("CNN_JAX_MICROBATCHES", "0"))
    if requested == 0:
        if mesh is not None or (backend or jax.default_backend()) != "cpu":
            return 1
        if network is not None and input_shape is not None \
                and dense_share(network, input_shape) >= DENSE_SHARE_LIMIT:
            return 1
        smallest = min(16, batch_size // 2)
        candidates = [d for d in range(1, MAX_MICROBATCHES + 1)
                      if batch_size % d == 0 and batch_size // d >= max(smallest, 1)]
        return max(candidates)
    if batch_size % requested:
        raise ValueError(f"microbatches={requested} does not divide the batch of {batch_size}")
    return requested


def with_impls(network: Network, conv_impl: str, pool_impl: str, batch: int, *,
               training: bool = True) -> Network:
    """`network` with the conv/pool formulations that `resolve_impls` picks for `batch`."""
    conv_impl, pool_impl = resolve_impls(conv_impl, pool_impl, batch, training=training)
    return network.with_impls(conv=conv_impl, pool=pool_impl)


def epoch_order(data_key: jax.Array, epoch: int | jax.Array, num_examples: int) -> jax.Array:
    """The shuffled order of the training examples in `epoch` (a pure function of key, epoch)."""
    return jax.random.permutation(jax.random.fold_in(data_key, epoch), num_examples)


@functools.lru_cache(maxsize=64)
def train_steps(
    network: Network, loss: str, optimizer: str, schedule: str, batch_size: int, num_steps: int,
    mesh: Mesh | None = None, *, conv_impl: str = "auto", pool_impl: str = "auto",
    unroll: int = 1, microbatches: int = 0,
):
    """jit(run)(state, images, labels, order, first_batch) -> state after `num_steps` steps.

    images (N, H, W, C) and labels (N,) stay on the device; batch b uses the examples
    order[b·batch_size : (b+1)·batch_size]. The state argument is donated. conv_impl/pool_impl:
    see the module docstring; unroll: `lax.scan`'s unroll when num_steps > 1.
    """
    loss_fn = get_loss(loss)
    per_device = batch_size // (1 if mesh is None else mesh.size)
    tx = make_optimizer(optimizer)
    has_dropout = any(layer.kind == "dropout" for layer in network.layers)

    def data_loss_and_grads(params, x, y, key, micro, apply):
        """Mean loss, its gradient and the logits, over `micro` independent micro-batches;
        dropout draws from one key per example (the same masks for any split)."""
        keys = example_keys(key, batch_size) if has_dropout else None

        def part(x, y, keys):
            def objective(params):
                logits = apply(params, x, train=True, key=keys)
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

    def one_step(state: TrainState, images, labels, order, batch_index, micro, apply
                 ) -> TrainState:
        index = jax.lax.dynamic_slice_in_dim(order, batch_index * batch_size, batch_size)
        x = shard_batch(jnp.take(images, index, axis=0), mesh)
        y = jnp.take(labels, index, axis=0)
        dropout_key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

        data_loss, grads, logits = data_loss_and_grads(state.params, x, y, dropout_key, micro,
                                                       apply)
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
        micro = resolve_microbatches(microbatches, batch_size, mesh, network=network,
                                     input_shape=images.shape[1:])
        apply = with_impls(network, conv_impl, pool_impl, per_device // micro).apply
        if num_steps == 1:
            return one_step(state, images, labels, order, first_batch, micro, apply)

        def body(carry, offset):
            return one_step(carry, images, labels, order, first_batch + offset, micro,
                            apply), None

        state, _ = jax.lax.scan(body, state, jnp.arange(num_steps), unroll=unroll)
        return state

    return jax.jit(run, donate_argnums=(0,))


@functools.lru_cache(maxsize=32)
def vmapped_train_steps(
    network: Network, loss: str, optimizer: str, schedule: str, batch_size: int, num_steps: int,
    *, conv_impl: str = "auto", pool_impl: str = "auto", unroll: int = 1, microbatches: int = 0,
):
    """`train_steps` for a stack of M same-shape models, as one program (one device).

    jit(run)(states, images, labels, orders, first_batch) -> states: every leaf of `states` and
    `orders` (M, N) has a leading model axis (each model its own parameters, learning rate, λ,
    seed and data order); images and labels are shared. The states argument is donated.
    """
    run = train_steps(network, loss, optimizer, schedule, batch_size, num_steps, None,
                      conv_impl=conv_impl, pool_impl=pool_impl, unroll=unroll,
                      microbatches=microbatches)
    return jax.jit(jax.vmap(run, in_axes=(0, None, None, 0, None)), donate_argnums=(0,))


@functools.lru_cache(maxsize=64)
def eval_chunk(network: Network, loss: str, chunk_size: int, mesh: Mesh | None = None, *,
               conv_impl: str = "auto", pool_impl: str = "auto"):
    """jit(run)(params, images, labels, weights, chunk) -> (Σ weight·loss, Σ weight·correct).

    Evaluates examples [chunk·chunk_size, (chunk+1)·chunk_size); padding has weight 0.
    """
    loss_fn = get_loss(loss)
    per_device = chunk_size // (1 if mesh is None else mesh.size)
    apply = with_impls(network, conv_impl, pool_impl, per_device, training=False).apply

    def run(params, images, labels, weights, chunk):
        start = chunk * chunk_size
        x = shard_batch(jax.lax.dynamic_slice_in_dim(images, start, chunk_size), mesh)
        y = jax.lax.dynamic_slice_in_dim(labels, start, chunk_size)
        w = jax.lax.dynamic_slice_in_dim(weights, start, chunk_size)
        logits = apply(params, x)
        losses = jax.vmap(lambda z, t: loss_fn(z[None], t[None]))(logits, y)
        hits = (jnp.argmax(logits, axis=-1) == y).astype(jnp.float32)
        return jnp.sum(w * losses), jnp.sum(w * hits)

    return jax.jit(run)


@functools.lru_cache(maxsize=32)
def vmapped_eval_chunk(network: Network, loss: str, chunk_size: int, *, conv_impl: str = "auto",
                       pool_impl: str = "auto"):
    """`eval_chunk` for M stacked parameter sets: (Σ weight·loss, Σ weight·correct), each (M,)."""
    run = eval_chunk(network, loss, chunk_size, None, conv_impl=conv_impl, pool_impl=pool_impl)
    return jax.jit(jax.vmap(run, in_axes=(0, None, None, None, None)))


def all_finite(tree) -> jax.Array:
    """True when no leaf of `tree` holds a NaN or an infinity."""
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(leaf.dtype, jnp.floating)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)
