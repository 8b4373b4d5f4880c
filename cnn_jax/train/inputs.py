"""From a config to device-resident arrays: the data set, split and padded for evaluation."""

from __future__ import annotations

import dataclasses

import jax
import ml_collections
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


def load_for_config(config: ml_collections.ConfigDict):
    """The `cnn_jax.data.Dataset` that `config` names.

    Raises:
      DatasetNotAvailableError: not on this machine (the message says how to get it).
      DataError: corrupt files, or sizes the data set does not have (the message names the key).
    """
    from cnn_jax.data import DataError, load_dataset

    try:
        return load_dataset(
            config.dataset, data_dir=config.data_dir or None, idx_dir=config.idx_dir or None,
            validation_size=config.validation_size, train_size=config.train_size or None,
            test_size=config.test_size or None, expand=config.expand, seed=config.seed,
        )
    except DataError:
        raise
    except ValueError as error:  # sizes out of range for a data set known only once loaded
        raise DataError(f"{config.dataset}: {error}") from None


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
