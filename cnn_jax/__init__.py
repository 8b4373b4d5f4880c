"""cnn_jax: convolutional networks as pure JAX functions, after Nielsen's chapter 6.

Importing the package adds cnn_jax's measured XLA:CPU options to XLA_FLAGS before JAX creates
its backend (`cnn_jax.backend`; CNN_JAX_XLA_DEFAULTS=0 leaves XLA_FLAGS alone).
"""

from cnn_jax import backend as _backend

_backend.configure()

# ruff: noqa: E402  (the options must be in XLA_FLAGS before anything below can create a backend)

from cnn_jax.errors import CnnJaxError, ConfigError, DataError, LayerError, ShapeError
from cnn_jax.layers import (
    Conv,
    Dense,
    Dropout,
    LocallyConnected,
    Pool,
    conv2d,
    dense,
    dropout,
    local2d,
    pool2d,
)
from cnn_jax.losses import accuracy, cross_entropy, l2_penalty, quadratic_cost
from cnn_jax.network import Network, count_params, layer_from_dict
from cnn_jax.presets import PRESETS, preset
from cnn_jax.summary import format_table, shape_table, traced_shapes

__all__ = [
    "PRESETS", "CnnJaxError", "ConfigError", "Conv", "DataError", "Dense", "Dropout",
    "LayerError", "LocallyConnected", "Network", "Pool", "ShapeError",
    "accuracy", "conv2d", "count_params", "cross_entropy", "dense", "dropout", "format_table",
    "l2_penalty", "layer_from_dict", "local2d", "pool2d", "preset", "quadratic_cost",
    "shape_table", "traced_shapes",
]
