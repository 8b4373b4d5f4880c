"""Fully connected layer: every input unit feeds every output unit. Images are flattened first."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

from cnn_jax.activations import get_activation
from cnn_jax.initializers import init_bias, init_kernel
from cnn_jax.layers.base import LayerParams, LayerPlan, Shape, positive_int


def dense(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """x (batch, ...) flattened to (batch, n_in), times kernel (n_in, n_out), plus bias (n_out,)."""
    return x.reshape(x.shape[0], -1) @ kernel + bias


@dataclasses.dataclass(frozen=True)
class Dense:
    """`features` fully connected units; `identity` activation gives logits."""

    features: int
    activation: str = "relu"
    kind = "dense"

    def plan(self, name: str, input_shape: Shape) -> LayerPlan:
        units = positive_int(name, "features", self.features)
        get_activation(self.activation, name)
        n_in = math.prod(input_shape)
        flat = " (flattened)" if len(input_shape) > 1 else ""
        return LayerPlan(
            name=name, kind=self.kind, input_shape=tuple(input_shape), output_shape=(units,),
            params=n_in * units + units, macs=n_in * units, activation=self.activation,
            detail=f"{n_in}{flat} → {units}",
        )

    def init(self, key: jax.Array, plan: LayerPlan, scheme: str, pool_area: int = 1) -> LayerParams:
        n_in, units = math.prod(plan.input_shape), plan.output_shape[0]
        if scheme == "nielsen" and self.activation == "identity":
            # network3.py's softmax layer starts from zero weights and biases.
            return {"kernel": jnp.zeros((n_in, units)), "bias": jnp.zeros((units,))}
        kernel_key, bias_key = jax.random.split(key)
        return {
            "kernel": init_kernel(scheme, kernel_key, (n_in, units), nielsen_fan_out=units),
            "bias": init_bias(scheme, bias_key, (units,)),
        }

    def apply(
        self, params: LayerParams, x: jax.Array, plan: LayerPlan, *, train: bool = False,
        key: jax.Array | None = None, formulation: Any = None,
    ) -> jax.Array:
        z = dense(x, params["kernel"], params["bias"])
        return get_activation(self.activation, plan.name)(z)
