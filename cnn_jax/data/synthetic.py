"""A synthetic data set for benchmarks and tests: random images whose label is learnable."""

from __future__ import annotations

import numpy as np

from cnn_jax.data.dataset import Dataset

SYNTHETIC_TRAIN_SIZE = 1000
SYNTHETIC_TEST_SIZE = 200


def synthetic_dataset(train_size: int = 0, validation_size: int = 0, test_size: int = 0,
                      seed: int = 0, shape: tuple[int, int, int] = (28, 28, 1),
                      classes: int = 10) -> Dataset:
    """Random images in [0, 0.5) with +0.5 added to the horizontal band of their label (the
    image's rows cut into `classes` bands): learnable by any network that sees the rows.

    Sizes: train_size (0 → `SYNTHETIC_TRAIN_SIZE`), validation_size, test_size (0 →
    `SYNTHETIC_TEST_SIZE`); the images are drawn from `seed`.
    """
    rng = np.random.default_rng(seed)
    sizes = (train_size or SYNTHETIC_TRAIN_SIZE, validation_size, test_size or SYNTHETIC_TEST_SIZE)
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
