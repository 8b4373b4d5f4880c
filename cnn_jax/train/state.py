"""The training state: a pytree of arrays only, so that one compiled step serves every trial.

Values that sweeps change without changing shapes are arrays of the state, not constants baked
into the compiled program, each in one slot: the base learning rate, momentum and Adam's β in the
optimizer's injected hyper-parameters (`opt_state.hyperparams`), λ in `hyper['l2']`, the seed in
`rng` (dropout) and the run's data key (`cnn_jax.train.experiment`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections

from cnn_jax.backend import jit_run_once
from cnn_jax.network import Network, Params
from cnn_jax.optim import CONFIG_HYPERPARAMS, make_optimizer


@flax.struct.dataclass
class TrainState:
    """step (int32), params, opt_state (its hyperparams hold the base learning rate), hyper
    {l2, total_steps: float32}, rng (uint32 key data), and the running sums of the current epoch
    {loss, correct, count} (kept so a resumed epoch goes on exactly where it stopped)."""

    step: jax.Array
    params: Params
    opt_state: Any
    hyper: dict[str, jax.Array]
    rng: jax.Array
    epoch_sums: dict[str, jax.Array]


def l2_strength(config: ml_collections.ConfigDict, steps_per_epoch: int) -> float:
    """Nielsen's scaling: the penalty ½·λ·Σw² is divided by the number of training batches."""
    return float(config.l2) / max(steps_per_epoch, 1)


@functools.partial(jit_run_once, static_argnums=(0, 2))
def init_params(network: Network, key: jax.Array, input_shape: tuple[int, int, int]) -> Params:
    """`network.init` as one compiled program (op by op, every new shape compiles its own),
    compiled as a program that runs once (`cnn_jax.backend.jit_run_once`)."""
    return network.init(key, input_shape)


def create_state(
    network: Network, config: ml_collections.ConfigDict, input_shape: tuple[int, int, int],
    steps_per_epoch: int,
) -> TrainState:
    """Initial state for `config` (parameters drawn from `config.seed`)."""
    init_key, dropout_key = jax.random.split(jax.random.key(config.seed))
    params = init_params(network, init_key, tuple(input_shape))
    optimizer = make_optimizer(config.optimizer)
    opt_state = optimizer.init(params)
    for name, key in CONFIG_HYPERPARAMS.get(config.optimizer, {}).items():
        opt_state.hyperparams[name] = jnp.asarray(config[key], jnp.float32)
    opt_state.hyperparams["learning_rate"] = jnp.asarray(config.learning_rate, jnp.float32)
    hyper = {
        "l2": jnp.asarray(l2_strength(config, steps_per_epoch), jnp.float32),
        "total_steps": jnp.asarray(steps_per_epoch * config.num_epochs, jnp.float32),
    }
    zeros = {"loss": jnp.zeros((), jnp.float32), "correct": jnp.zeros((), jnp.int32),
             "count": jnp.zeros((), jnp.int32)}
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state, hyper=hyper,
        rng=jax.random.key_data(dropout_key), epoch_sums=zeros,
    )


def reset_epoch_sums(state: TrainState) -> TrainState:
    return state.replace(epoch_sums=jax.tree_util.tree_map(jnp.zeros_like, state.epoch_sums))


def stack_states(states: Sequence[TrainState]) -> TrainState:
    """M states → one state whose every leaf has a leading model axis of size M."""
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *states)


def unstack_state(state: TrainState, index: int) -> TrainState:
    """Model `index` of a stacked state."""
    return jax.tree_util.tree_map(lambda leaf: leaf[index], state)
