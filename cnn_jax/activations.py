"""Activation functions by name: the course's σ (sigmoid), tanh, ReLU and the identity."""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from cnn_jax.errors import LayerError

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "identity": lambda x: x,
}


def get_activation(name: str, layer: str = "?") -> Callable[[jax.Array], jax.Array]:
    """The activation called `name`; a `LayerError` naming the layer and the choices otherwise."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise LayerError(
            f"layer '{layer}': unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}",
            "activation") from None
