"""``load_dataset``: a dataset name to an in-memory :class:`Dataset`."""

from __future__ import annotations

import os

import numpy as np

from cnn_jax.data import builders, sources
from cnn_jax.data.augment import expand_with_shifts
from cnn_jax.data.dataset import Dataset
from cnn_jax.data.errors import DatasetNotAvailableError

DEFAULT_DATASET = "mnist_5k"
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
PROJECT_DATASETS = ("mnist_5k", "idx", "fashion_mnist_debian")
STOCK_DATASETS = ("mnist", "fashion_mnist", "kmnist", "cifar10")


def available_datasets() -> list[str]:
    """The names :func:`load_dataset` accepts (whether or not they are on this machine)."""
    return [*PROJECT_DATASETS, *STOCK_DATASETS]


def default_data_dir() -> str:
    """``$CNN_JAX_DATA_DIR`` if set, else ``~/tensorflow_datasets``."""
    return os.environ.get("CNN_JAX_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def _idx_builder(name: str, idx_dir: str | None, data_dir: str):
    if not idx_dir and name == "idx":
        raise DatasetNotAvailableError(
            "idx: pass idx_dir, a folder with train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each optionally .gz); e.g. "
            f"after apt-get install -y dataset-fashion-mnist: idx_dir='{DEBIAN_FASHION_MNIST_DIR}'"
        )
    idx_dir = os.path.abspath(os.path.expanduser(idx_dir or DEBIAN_FASHION_MNIST_DIR))
    try:
        config = builders.idx_config(idx_dir)
    except FileNotFoundError as e:
        raise DatasetNotAvailableError(
            f"{name}: {e}. Looked in {idx_dir} for train-images-idx3-ubyte, "
            "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each "
            "optionally .gz). For Fashion-MNIST run: apt-get install -y dataset-fashion-mnist "
            f"(installs them in {DEBIAN_FASHION_MNIST_DIR})"
        ) from e
    return sources.prepared_builder(
        lambda: builders.CnnJaxIdx(config=config, data_dir=data_dir), data_dir
    )


def _open(name: str, data_dir: str, idx_dir: str | None):
    """Returns (train source, test source, num_classes)."""
    if name in STOCK_DATASETS:
        if idx_dir:
            raise ValueError(f"idx_dir applies to 'idx' and 'fashion_mnist_debian', not {name!r}")
        train, test = sources.stock_sources(name, data_dir)
    else:
        if name == "mnist_5k":
            if idx_dir:
                raise ValueError("idx_dir applies to 'idx' and 'fashion_mnist_debian'")
            builder = sources.prepared_builder(
                lambda: builders.CnnJaxMnist5k(data_dir=data_dir), data_dir
            )
        else:
            builder = _idx_builder(name, idx_dir, data_dir)
        train, test = builder.as_data_source(split=["train", "test"])
    return train, test, int(train.dataset_info.features["label"].num_classes)


def _check_size(what: str, value: int | None, limit: int) -> None:
    if value is not None and not 0 <= value <= limit:
        raise ValueError(f"{what}={value} is outside [0, {limit}]")


def _to_float(images: np.ndarray) -> np.ndarray:
    out = images.astype(np.float32)
    out /= np.float32(255)
    return out


def load_dataset(
    name: str = DEFAULT_DATASET,
    *,
    data_dir: str | None = None,
    idx_dir: str | None = None,
    validation_size: int = 0,
    train_size: int | None = None,
    test_size: int | None = None,
    expand: bool = False,
    seed: int = 0,
) -> Dataset:
    """Loads a dataset into memory, preparing the project's builders on first use.

    Args:
      name: one of :func:`available_datasets`. ``mnist_5k`` (5,000 real MNIST digits, train
        4,000 / test 1,000, stratified), ``idx`` (MNIST-format IDX files in ``idx_dir``),
        ``fashion_mnist_debian`` (``idx`` in /usr/share/datasets/fashion-mnist), or the stock
        TFDS ``mnist``, ``fashion_mnist``, ``kmnist``, ``cifar10`` prepared as ArrayRecord.
      data_dir: TFDS data folder; default :func:`default_data_dir`.
      idx_dir: the IDX folder, for ``idx`` and ``fashion_mnist_debian`` only.
      validation_size: the LAST ``validation_size`` training images become the validation split.
      train_size: keep the first ``train_size`` of the remaining training images.
      test_size: keep the first ``test_size`` test images.
      expand: replace the training part (after the two cuts above) by
        :func:`expand_with_shifts` of it: 5x as many images, in five blocks.
      seed: reserved for random subset choices; every current option is deterministic.

    Returns:
      A :class:`Dataset`: float32 images ``(N, H, W, C)`` = pixel / 255, int32 labels.

    Raises:
      DatasetNotAvailableError: the data is not on this machine (the message says how to get it).
      DataError: corrupt or inconsistent files.
      ValueError: an unknown name or out-of-range sizes.
    """
    del seed  # reserved
    if name not in available_datasets():
        raise ValueError(f"unknown dataset {name!r}; choose from {available_datasets()}")
    data_dir = os.path.abspath(os.path.expanduser(data_dir or default_data_dir()))
    train_src, test_src, num_classes = _open(name, data_dir, idx_dir)

    n_train, n_test = len(train_src), len(test_src)
    if not 0 <= validation_size < n_train:
        raise ValueError(
            f"validation_size={validation_size} must be in [0, {n_train}): {name} has "
            f"{n_train} training images"
        )
    n_fit = n_train - validation_size
    _check_size("train_size", train_size, n_fit)
    _check_size("test_size", test_size, n_test)

    train_x, train_y = sources.read_records(
        train_src, 0, n_fit if train_size is None else train_size, num_classes
    )
    val_x, val_y = sources.read_records(train_src, n_fit, n_train, num_classes)
    test_x, test_y = sources.read_records(
        test_src, 0, n_test if test_size is None else test_size, num_classes
    )
    if expand:
        train_x, train_y = expand_with_shifts(train_x, train_y)
    return Dataset(
        name=name,
        train_images=_to_float(train_x),
        train_labels=train_y,
        val_images=_to_float(val_x),
        val_labels=val_y,
        test_images=_to_float(test_x),
        test_labels=test_y,
        num_classes=num_classes,
    )
