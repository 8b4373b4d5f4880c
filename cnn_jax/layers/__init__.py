"""Layer specs (hyper-parameters) and the pure functions that compute them."""

from cnn_jax.layers.base import Layer, LayerPlan
from cnn_jax.layers.conv import Conv, conv2d
from cnn_jax.layers.dense import Dense, dense
from cnn_jax.layers.dropout import Dropout, dropout
from cnn_jax.layers.local import LocallyConnected, local2d
from cnn_jax.layers.pooling import POOL_TYPES, Pool, pool2d

__all__ = [
    "POOL_TYPES", "Conv", "Dense", "Dropout", "Layer", "LayerPlan", "LocallyConnected", "Pool",
    "conv2d", "dense", "dropout", "local2d", "pool2d",
]
