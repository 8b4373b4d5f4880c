"""Evaluation splits as device-resident arrays, padded to whole chunks."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from jax.sharding import Mesh

from cnn_jax.train.devices import replicate


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """An evaluation split padded to whole chunks: weight 1 for real examples, 0 for padding."""

    images: jax.Array  # (chunks·chunk_size, H, W, C)
    labels: jax.Array  # (chunks·chunk_size,)
    weights: jax.Array  # (chunks·chunk_size,)
    size: int
    chunks: int


def eval_set(images: np.ndarray, labels: np.ndarray, chunk_size: int, mesh: Mesh | None) -> EvalSet:
    """Pads (images, labels) to whole chunks and places them on the device(s).

    The chunk is at most `chunk_size`, at most the split's size, and a multiple of the number of
    devices of `mesh` (each device evaluates an equal slice of every chunk).
    """
    size = len(labels)
    devices = 1 if mesh is None else mesh.size
    chunk_size = eval_chunk_size(chunk_size, max(size, 1), devices)
    chunks = -(-size // chunk_size) if size else 0
    padding = chunks * chunk_size - size
    images = np.concatenate([images, np.zeros((padding, *images.shape[1:]), images.dtype)])
    labels = np.concatenate([labels, np.zeros((padding,), labels.dtype)])
    weights = np.concatenate([np.ones((size,), np.float32), np.zeros((padding,), np.float32)])
    images, labels, weights = replicate((images, labels, weights), mesh)
    return EvalSet(images, labels, weights, size, chunks)


def eval_chunk_size(requested: int, size: int, devices: int) -> int:
    """The chunk size: at most the split's size, rounded up to a multiple of the device count."""
    chunk = max(1, min(requested, size))
    return -(-chunk // devices) * devices
