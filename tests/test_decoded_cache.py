"""The decoded-array cache beside prepared ArrayRecord files (cnn_jax.data.sources)."""

from __future__ import annotations

import numpy as np

from cnn_jax.data import load_dataset, sources
from tests.test_data import write_idx_folder


def caches(data_dir):
    return sorted(p.name for p in data_dir.rglob(f"{sources.DECODED_PREFIX}*.npz"))


def test_second_load_reads_the_cache_and_gives_the_same_arrays(tmp_path, monkeypatch):
    write_idx_folder(tmp_path / "idx")
    data_dir = tmp_path / "data"
    first = load_dataset("idx", idx_dir=str(tmp_path / "idx"), data_dir=str(data_dir),
                         validation_size=10)
    assert [name.split("-")[1] for name in caches(data_dir)] == ["test", "train"]

    def no_decoding(*args, **kwargs):
        raise AssertionError("records decoded again")

    monkeypatch.setattr(sources, "_decode", no_decoding)
    again = load_dataset("idx", idx_dir=str(tmp_path / "idx"), data_dir=str(data_dir),
                         validation_size=10)
    for name in ("train_images", "train_labels", "val_images", "val_labels", "test_images",
                 "test_labels"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))
        assert getattr(again, name).dtype == getattr(first, name).dtype


class FakeSource:
    """A data source over in-memory records whose 'prepared file' is written to `folder`."""

    def __init__(self, folder, images: np.ndarray, labels: np.ndarray, split: str = "train"):
        self.split, self.images, self.labels, self.reads = split, images, labels, 0
        features = {"image": type("F", (), {"shape": images.shape[1:]})()}
        self.dataset_info = type("Info", (), {"data_dir": str(folder), "name": "fake",
                                              "features": features})()
        for part in split.split("+"):
            (folder / f"fake-{part}.array_record-00000-of-00001").write_bytes(images.tobytes())

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, rows):
        self.reads += 1
        return [{"image": self.images[i], "label": self.labels[i]} for i in rows]


def test_changed_files_invalidate_the_cache(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 4, 4, 1), dtype=np.uint8)
    labels = np.arange(6) % 3
    first = FakeSource(tmp_path, images, labels)
    np.testing.assert_array_equal(sources.decoded_split(first)[0], images)
    cached = FakeSource(tmp_path, images, labels)
    np.testing.assert_array_equal(sources.decoded_split(cached)[1], labels)
    assert cached.reads == 0  # read from the cache
    changed = FakeSource(tmp_path, 255 - images, labels)  # same sizes, other bytes
    np.testing.assert_array_equal(sources.decoded_split(changed)[0], 255 - images)
    assert changed.reads == 1
    assert len(caches(tmp_path)) == 1  # the stale cache was replaced


def test_a_corrupt_cache_is_decoded_again_and_replaced(tmp_path):
    write_idx_folder(tmp_path / "idx")
    data_dir = tmp_path / "data"
    first = load_dataset("idx", idx_dir=str(tmp_path / "idx"), data_dir=str(data_dir))
    (train_cache,) = data_dir.rglob("decoded-train-*.npz")
    train_cache.write_bytes(train_cache.read_bytes()[:100])  # truncated
    again = load_dataset("idx", idx_dir=str(tmp_path / "idx"), data_dir=str(data_dir))
    np.testing.assert_array_equal(again.train_images, first.train_images)
    with np.load(train_cache) as stored:  # rewritten whole
        assert stored["images"].shape[0] == len(first.train_labels)


def test_an_unwritable_folder_loads_without_a_cache(tmp_path, monkeypatch):
    write_idx_folder(tmp_path / "idx")
    data_dir = tmp_path / "data"
    first = load_dataset("idx", idx_dir=str(tmp_path / "idx"), data_dir=str(data_dir))
    for cache in data_dir.rglob("decoded-*.npz"):
        cache.unlink()

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(sources.os, "replace", read_only)
    again = load_dataset("idx", idx_dir=str(tmp_path / "idx"), data_dir=str(data_dir))
    np.testing.assert_array_equal(again.train_images, first.train_images)
    assert caches(data_dir) == [] and not list(data_dir.rglob("*.partial"))


def test_a_combined_split_is_cached_and_keyed_by_both_files(tmp_path):
    images = np.arange(4 * 9, dtype=np.uint8).reshape(4, 3, 3, 1)
    labels = np.arange(4) % 2
    source = FakeSource(tmp_path, images, labels, split="train+validation")
    assert len(sources.split_files(source)) == 2
    sources.decoded_split(source)
    cached = FakeSource(tmp_path, images, labels, split="train+validation")
    np.testing.assert_array_equal(sources.decoded_split(cached)[0], images)
    assert cached.reads == 0
    (tmp_path / "fake-validation.array_record-00000-of-00001").write_bytes(b"other")
    assert sources.decoded_split(cached) and cached.reads == 1  # the second file changed
