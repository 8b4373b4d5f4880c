"""Optimizers and learning-rate schedules: one registry each, so that a new one is one entry.

The base learning rate (and momentum, Adam's β) live in the optimizer's state as arrays
(`optax.inject_hyperparams`); the schedule is evaluated inside the compiled step from that base
rate and the step, and handed to the update without being stored, so the state holds each value
once and trials that differ only in these values share one program.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

# name → an Optax optimizer whose hyper-parameters are injected (their values set per run).
OPTIMIZERS: dict[str, Callable[[], optax.GradientTransformation]] = {
    "sgd": lambda: optax.inject_hyperparams(optax.sgd)(learning_rate=0.0),
    "momentum": lambda: optax.inject_hyperparams(optax.sgd)(learning_rate=0.0, momentum=0.0),
    "adam": lambda: optax.inject_hyperparams(optax.adam)(learning_rate=0.0, b1=0.9, b2=0.999),
}
# optimizer → {its injected hyper-parameter: the config key that sets it}; the injected learning
# rate is config.learning_rate, scaled by the schedule at every step.
CONFIG_HYPERPARAMS: dict[str, dict[str, str]] = {
    "momentum": {"momentum": "momentum"},
    "adam": {"b1": "adam_b1", "b2": "adam_b2"},
}

WARMUP = 0.1  # the fraction of training that warmup_cosine spends warming up


def _warmup_cosine(progress: jax.Array) -> jax.Array:
    """Linear warm-up from 0 over the first `WARMUP` of training, then cosine decay to 0."""
    decay = (progress - WARMUP) / (1.0 - WARMUP)
    return jnp.where(progress < WARMUP, progress / WARMUP,
                     0.5 * (1.0 + jnp.cos(jnp.pi * jnp.clip(decay, 0.0, 1.0))))


# name → the factor by which the base learning rate is multiplied at `progress` ∈ [0, 1].
SCHEDULES: dict[str, Callable[[jax.Array], jax.Array]] = {
    "constant": lambda progress: jnp.ones_like(progress),
    "cosine": lambda progress: 0.5 * (1.0 + jnp.cos(jnp.pi * progress)),  # decay to 0
    "step": lambda progress: jnp.where(progress < 0.5, 1.0, jnp.where(progress < 0.75, 0.1, 0.01)),
    "linear": lambda progress: 1.0 - progress,  # decay to 0
    "warmup_cosine": _warmup_cosine,
}


def make_optimizer(name: str) -> optax.GradientTransformation:
    """The optimizer called `name` (a key of `OPTIMIZERS`)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}")
    return OPTIMIZERS[name]()


def learning_rate_at(schedule: str, step: jax.Array, hyper: dict[str, jax.Array]) -> jax.Array:
    """The learning rate at `step`: the base rate hyper['learning_rate'] × the schedule's factor
    at step / hyper['total_steps'] (clipped to 1)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {list(SCHEDULES)}")
    total = jnp.maximum(hyper["total_steps"], 1.0)
    progress = jnp.minimum(step.astype(jnp.float32) / total, 1.0)
    return hyper["learning_rate"] * SCHEDULES[schedule](progress)
