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

    if config.dataset == "synthetic":
        return synthetic_dataset(config)
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


def synthetic_dataset(config: ml_collections.ConfigDict, shape: tuple[int, int, int] = (28, 28, 1),
                      classes: int = 10):
    """Random images whose label is the brightest of `classes` horizontal bands: learnable, for
    benchmarks and tests; sizes from config.train_size (default 1,000), validation_size and
    test_size (default 200)."""
    from cnn_jax.data import Dataset

    rng = np.random.default_rng(config.seed)
    sizes = (config.train_size or 1000, config.validation_size, config.test_size or 200)
    images = rng.random((sum(sizes), *shape), dtype=np.float32) * 0.5
    labels = rng.integers(0, classes, sum(sizes)).astype(np.int32)
    bands = np.array_split(np.arange(shape[0]), classes)
    for label in range(classes):
        rows = bands[label]
        images[labels == label, rows[0]:rows[-1] + 1] += 0.5
    a, b = sizes[0], sizes[0] + sizes[1]
    return Dataset(
        name="synthetic", train_images=images[:a], train_labels=labels[:a],
        val_images=images[a:b], val_labels=labels[a:b], test_images=images[b:],
        test_labels=labels[b:], num_classes=classes,
    )
