"""Costs and metrics, numerically stable and differentiable (`jax.grad`, `jax.jit`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.errors import DataError


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean log-likelihood cost of a softmax output: −mean log softmax(logits)[label].

    Args:
      logits: (batch, classes). labels: (batch,) integers in [0, classes).
    """
    check_labels(labels, logits.shape[-1])
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None].astype(jnp.int32), axis=-1))


def check_labels(labels: jax.Array, classes: int) -> None:
    """Raises `DataError` if concrete `labels` fall outside [0, classes): out-of-range labels
    give a wrong finite cost or NaN instead of an error. Traced labels (inside `jax.jit`, the
    training step) are not checked: the data sets check their labels when they are loaded."""
    if isinstance(labels, jax.core.Tracer):
        return
    values = np.asarray(labels)
    if values.size and (values.min() < 0 or values.max() >= classes):
        bad = values[(values < 0) | (values >= classes)]
        raise DataError(f"labels must be integers in [0, {classes}) for {classes} classes; got "
                        f"{bad.size} outside, e.g. {bad.flat[0]}")


def quadratic_cost(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """The course's quadratic cost ½·mean‖y − a‖² with a = softmax(logits), y one-hot."""
    check_labels(labels, logits.shape[-1])
    outputs = jax.nn.softmax(logits, axis=-1)
    targets = jax.nn.one_hot(labels, logits.shape[-1], dtype=outputs.dtype)
    return 0.5 * jnp.mean(jnp.sum((targets - outputs) ** 2, axis=-1))


LOSSES = {"cross_entropy": cross_entropy, "quadratic": quadratic_cost}


def get_loss(name: str):
    """The cost function called `name` (a key of `LOSSES`)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {list(LOSSES)}")
    return LOSSES[name]


def l2_penalty(params: dict, strength: float | jax.Array) -> jax.Array:
    """½·strength·Σ‖w‖² over the weights (every leaf named 'kernel'), not the biases."""
    squares = [
        jnp.sum(jnp.square(leaf))
        for path, leaf in jax.tree_util.tree_leaves_with_path(params)
        if getattr(path[-1], "key", None) == "kernel"
    ]
    return 0.5 * strength * sum(squares, jnp.zeros(()))


def correct(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Number of correctly classified examples (argmax), as int32."""
    return jnp.sum(jnp.argmax(logits, axis=-1) == labels).astype(jnp.int32)


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of correctly classified examples."""
    return correct(logits, labels) / labels.shape[0]
