"""Dropout: during training each unit is kept with probability 1 − rate (explicit PRNG key).

Inverted dropout: kept units are scaled by 1/(1 − rate) during training, so evaluation is the
identity. The book scales by (1 − rate) at test time instead; both give the same expected
activations.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from cnn_jax.layers.base import LayerPlan, Params, Shape
from cnn_jax.shapes import ShapeError


def dropout(x: jax.Array, rate: float | jax.Array, key: jax.Array) -> jax.Array:
    """Zeroes each element of x with probability `rate`, scales the rest by 1/(1 − rate)."""
    keep = 1.0 - rate
    mask = jax.random.bernoulli(key, keep, x.shape)
    return jnp.where(mask, x / keep, jnp.zeros_like(x))


@dataclasses.dataclass(frozen=True)
class Dropout:
    """Dropout of the layer's input units with probability `rate` in [0, 1)."""

    rate: float = 0.5
    kind = "dropout"

    def plan(self, name: str, input_shape: Shape) -> LayerPlan:
        if isinstance(self.rate, bool) or not isinstance(self.rate, int | float) or not (
            0.0 <= self.rate < 1.0
        ):
            raise ShapeError(f"layer '{name}': dropout rate must be in [0, 1), got {self.rate!r}")
        return LayerPlan(
            name=name, kind=self.kind, input_shape=tuple(input_shape),
            output_shape=tuple(input_shape), params=0, macs=0, detail=f"p={self.rate}",
        )

    def init(self, key: jax.Array, plan: LayerPlan, scheme: str, pool_area: int = 1) -> Params:
        return {}

    def apply(
        self, params: Params, x: jax.Array, plan: LayerPlan, *, train: bool = False,
        key: jax.Array | None = None,
    ) -> jax.Array:
        if not train or self.rate == 0.0:
            return x
        if key is None:
            raise ValueError(f"layer '{plan.name}': dropout in training needs a PRNG key")
        return dropout(x, self.rate, key)
