"""``load_dataset``: a data set's name to an in-memory :class:`Dataset`; ``check_split_sizes`` and
``check_idx_dir``: the arguments it takes (checked here, and by `cnn_jax.config` before loading)."""

from __future__ import annotations

import os

import numpy as np

from cnn_jax.data import sources
from cnn_jax.data.augment import expand_with_shifts
from cnn_jax.data.dataset import Dataset
from cnn_jax.data.registry import DATASETS, dataset_info, dataset_names
from cnn_jax.data.synthetic import synthetic_dataset
from cnn_jax.errors import ConfigError


def default_data_dir() -> str:
    """``$CNN_JAX_DATA_DIR`` if set, else ``~/tensorflow_datasets``."""
    return os.environ.get("CNN_JAX_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def check_idx_dir(name: str, idx_dir: str | None) -> None:
    """An IDX folder only for the data sets that read one; raises `ConfigError`."""
    info = dataset_info(name)
    if idx_dir and info is not None and not info.uses_idx_dir:
        users = [entry for entry, known in DATASETS.items() if known.uses_idx_dir]
        raise ConfigError("idx_dir", idx_dir, f"'' unless dataset is one of {users}")


def check_split_sizes(name: str, train_total: int | None, test_total: int | None, *,
                      validation_size: int, train_size: int | None, test_size: int | None
                      ) -> None:
    """The split sizes of data set `name`, whose training and test parts hold `train_total` and
    `test_total` images (None: unknown, not checked): the last `validation_size` training images
    are held out, `train_size` of the rest kept (0 or None: all), `test_size` test images kept
    (0 or None: all). Raises `ConfigError` naming the key."""
    for key, value in (("validation_size", validation_size), ("train_size", train_size),
                       ("test_size", test_size)):
        if value is not None and value < 0:
            raise ConfigError(key, value, "a value in [0, ∞)")
    if train_total is not None:
        if validation_size >= train_total:
            raise ConfigError("validation_size", validation_size,
                              f"less than the {train_total} training images of {name}")
        left = train_total - validation_size
        if train_size and train_size > left:
            raise ConfigError("train_size", train_size,
                              f"at most {left} ({name}'s {train_total} training images less "
                              f"validation_size {validation_size}), or 0 for all")
    if test_total is not None and test_size and test_size > test_total:
        raise ConfigError("test_size", test_size,
                          f"at most the {test_total} test images of {name}, or 0 for all")


def _to_float(images: np.ndarray, scale: float) -> np.ndarray:
    out = images.astype(np.float32)
    out /= np.float32(scale)
    return out


def load_dataset(
    name: str,
    *,
    data_dir: str | None = None,
    idx_dir: str | None = None,
    validation_size: int = 0,
    train_size: int | None = None,
    test_size: int | None = None,
    expand: bool = False,
    seed: int = 0,
) -> Dataset:
    """Loads a data set into memory, preparing the project's builders on first use.

    Args:
      name: a key of `cnn_jax.data.registry.DATASETS` (``mnist_5k``, ``fashion_mnist_debian``,
        ``idx``, ``synthetic``, …) or ``tfds:<name>`` for a stock TFDS data set prepared as
        ArrayRecord in ``data_dir``.
      data_dir: TFDS data folder; default :func:`default_data_dir`.
      idx_dir: the IDX folder, for data sets that read one (``idx``, ``fashion_mnist_debian``).
      validation_size: the LAST ``validation_size`` training images become the validation split.
      train_size: keep the first ``train_size`` of the remaining training images.
      test_size: keep the first ``test_size`` test images.
      expand: replace the training part (after the two cuts above) by
        :func:`expand_with_shifts` of it: 5x as many images, in five blocks.
      seed: draws the synthetic data set; the others are deterministic.

    Returns:
      A :class:`Dataset`: float32 images ``(N, H, W, C)`` = pixel / the data set's
      ``pixel_scale`` (255, so in [0, 1]), int32 labels.

    Raises:
      DatasetNotAvailableError: the data is not on this machine (the message says how to get it).
      DataError: corrupt or inconsistent files.
      ConfigError: out-of-range sizes (`check_split_sizes`), an IDX folder for a data set that
        reads none (`check_idx_dir`).
      ValueError: an unknown name.
    """
    info = dataset_info(name)
    if info is None:
        raise ValueError(f"unknown dataset {name!r}; choose from {dataset_names()}")
    check_idx_dir(name, idx_dir)
    if info.open is None:
        data = synthetic_dataset(train_size or 0, validation_size, test_size or 0, seed)
        train_x, train_y = data.train_images, data.train_labels
        if expand:
            train_x, train_y = expand_with_shifts(train_x, train_y)
        return Dataset(name, train_x, train_y, data.val_images, data.val_labels,
                       data.test_images, data.test_labels, data.num_classes)
    data_dir = os.path.abspath(os.path.expanduser(data_dir or default_data_dir()))
    train_src, test_src = info.open(data_dir, idx_dir)
    num_classes = int(train_src.dataset_info.features["label"].num_classes)

    n_train, n_test = len(train_src), len(test_src)
    check_split_sizes(name, n_train, n_test, validation_size=validation_size,
                      train_size=train_size, test_size=test_size)
    n_fit = n_train - validation_size

    train_x, train_y = sources.read_records(
        train_src, 0, n_fit if train_size is None else train_size, num_classes
    )
    val_x, val_y = sources.read_records(train_src, n_fit, n_train, num_classes)
    test_x, test_y = sources.read_records(
        test_src, 0, n_test if test_size is None else test_size, num_classes
    )
    if expand:
        train_x, train_y = expand_with_shifts(train_x, train_y)
    scale = info.pixel_scale
    return Dataset(
        name=name,
        train_images=_to_float(train_x, scale),
        train_labels=train_y,
        val_images=_to_float(val_x, scale),
        val_labels=val_y,
        test_images=_to_float(test_x, scale),
        test_labels=test_y,
        num_classes=num_classes,
    )
