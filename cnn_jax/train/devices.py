"""Parallelism with `jax.sharding`. One run: the batch is split over all local devices along the
mesh axis 'data'; parameters, optimizer state and the (small) data sets are replicated. A
vmapped group of runs (`cnn_jax.train.train_vmapped`): the leading model axis is split over the mesh
axis 'models', each device training whole models on its replica of the data."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"
MODEL_AXIS = "models"


def make_mesh(devices: list | None = None) -> Mesh | None:
    """A 1-D mesh over the local devices, or None with a single device (nothing to shard)."""
    devices = jax.local_devices() if devices is None else devices
    if len(devices) == 1:
        return None
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicate(tree, mesh: Mesh | None):
    """Places every array of `tree` on every device of `mesh` (or the default device)."""
    if mesh is None:
        return jax.device_put(tree)
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_batch(x: jax.Array, mesh: Mesh | None) -> jax.Array:
    """Inside a jitted function: split the leading (batch) axis of x over the mesh."""
    if mesh is None:
        return x
    spec = PartitionSpec(DATA_AXIS, *([None] * (x.ndim - 1)))
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))


def model_mesh(models: int, devices: list | None = None) -> Mesh | None:
    """A 1-D mesh 'models' over the most local devices that split `models` evenly (20 models
    on 8 devices: 5), or None where that is one device."""
    devices = jax.local_devices() if devices is None else devices
    count = max(d for d in range(1, len(devices) + 1) if models % d == 0)
    return None if count == 1 else Mesh(np.asarray(devices[:count]), (MODEL_AXIS,))


def shard_models(tree, mesh: Mesh | None):
    """Places `tree`, whose every leaf has a leading model axis, split along 'models' of `mesh`."""
    if mesh is None:
        return jax.device_put(tree)
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec(MODEL_AXIS)))


def device_count(mesh: Mesh | None) -> int:
    return 1 if mesh is None else mesh.size


def initialize_distributed() -> None:
    """Multi-host: connects this process to the others (coordinator from the environment)."""
    jax.distributed.initialize()
