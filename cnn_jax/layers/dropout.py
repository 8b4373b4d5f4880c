"""Dropout: during training each unit is kept with probability 1 − rate (explicit PRNG key).

Inverted dropout: kept units are scaled by 1/(1 − rate) during training, so evaluation is the
identity. The book scales by (1 − rate) at test time instead; both give the same expected
activations.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from cnn_jax.errors import LayerError
from cnn_jax.layers.base import LayerParams, LayerPlan, ParameterFree, Shape


def dropout(x: jax.Array, rate: float | jax.Array, key: jax.Array) -> jax.Array:
    """Zeroes each element of x with probability `rate`, scales the rest by 1/(1 − rate).

    key: one PRNG key (one mask over all of x), or one key per example, shape (batch,): example
    b's mask then depends on key[b] alone, so a batch cut into micro-batches or sharded over
    devices draws the same masks as the whole batch.
    """
    keep = 1.0 - rate
    if key.ndim == 0:
        mask = jax.random.bernoulli(key, keep, x.shape)
    else:
        if key.shape != x.shape[:1]:
            raise ValueError(f"dropout: {key.shape[0]} keys for a batch of {x.shape[0]}")
        mask = jax.vmap(lambda k: jax.random.bernoulli(k, keep, x.shape[1:]))(key)
    return jnp.where(mask, x / keep, jnp.zeros_like(x))


def example_keys(key: jax.Array, batch_size: int) -> jax.Array:
    """One key per example of a batch: fold_in(key, b) for b in 0..batch_size−1, shape (batch,)."""
    return jax.vmap(lambda index: jax.random.fold_in(key, index))(jnp.arange(batch_size))


@dataclasses.dataclass(frozen=True)
class Dropout(ParameterFree):
    """Dropout of the layer's input units with probability `rate` in [0, 1)."""

    rate: float = 0.5
    kind = "dropout"

    def plan(self, name: str, input_shape: Shape) -> LayerPlan:
        if isinstance(self.rate, bool) or not isinstance(self.rate, int | float) or not (
            0.0 <= self.rate < 1.0
        ):
            raise LayerError(f"layer '{name}': dropout rate must be in [0, 1), got {self.rate!r}",
                             "rate")
        return LayerPlan(
            name=name, kind=self.kind, input_shape=tuple(input_shape),
            output_shape=tuple(input_shape), params=0, macs=0, detail=f"p={self.rate}",
        )

    def apply(
        self, params: LayerParams, x: jax.Array, plan: LayerPlan, *, train: bool = False,
        key: jax.Array | None = None, formulation: Any = None,
    ) -> jax.Array:
        if not train or self.rate == 0.0:
            return x
        if key is None:
            raise ValueError(f"layer '{plan.name}': dropout in training needs a PRNG key")
        return dropout(x, self.rate, key)
