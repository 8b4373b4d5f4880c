"""Weight and bias initialisation schemes, built on `jax.nn.initializers` with explicit keys.

Kernels keep their input features on axis -2 and output features on axis -1; leading axes that
index positions (the locally connected layer's unshared kernels) are batch axes, not fans.

`nielsen` reproduces the book's `network3.py`: weights ~ N(0, 1/n_out), biases ~ N(0, 1), where
n_out is the number of units a weight feeds (for a conv-pool layer: maps·kh·kw / pool area); its
softmax output layer starts at zero (see `layers/dense.py`). The
author later called n_out instead of n_in a mistake; the chapter's numbers were made with it.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

# scheme → (batch axes, the book's n_out) → a `jax.nn.initializers` initializer for kernels.
KERNEL_SCHEMES: dict[str, Callable[[tuple[int, ...], int], Callable]] = {
    "lecun_normal": lambda batch_axis, n_out: jax.nn.initializers.lecun_normal(
        batch_axis=batch_axis),
    "he_normal": lambda batch_axis, n_out: jax.nn.initializers.he_normal(batch_axis=batch_axis),
    "glorot_uniform": lambda batch_axis, n_out: jax.nn.initializers.glorot_uniform(
        batch_axis=batch_axis),
    "nielsen": lambda batch_axis, n_out: jax.nn.initializers.normal(stddev=(1.0 / n_out) ** 0.5),
}


def init_kernel(
    scheme: str, key: jax.Array, shape: tuple[int, ...], *, nielsen_fan_out: int,
    batch_axis: Sequence[int] = (), dtype: jnp.dtype = jnp.float32,
) -> jax.Array:
    """A kernel of `shape` drawn by `scheme`; `nielsen_fan_out` is the book's n_out."""
    if scheme not in KERNEL_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; choose one of {list(KERNEL_SCHEMES)}")
    return KERNEL_SCHEMES[scheme](tuple(batch_axis), nielsen_fan_out)(key, shape, dtype)


def init_bias(
    scheme: str, key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32
) -> jax.Array:
    """Biases: N(0, 1) for `nielsen`, zeros otherwise."""
    if scheme == "nielsen":
        return jax.random.normal(key, shape, dtype)
    return jnp.zeros(shape, dtype)
