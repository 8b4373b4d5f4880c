"""The immutable in-memory dataset that training code consumes."""

from __future__ import annotations

import dataclasses

import numpy as np

from cnn_jax.errors import DataError

_SPLITS = ("train", "val", "test")


def _frozen(array: np.ndarray, dtype: type) -> np.ndarray:
    """A C-contiguous read-only view of ``array`` as ``dtype`` (copies only to convert)."""
    out = np.ascontiguousarray(array, dtype=dtype).view()
    out.flags.writeable = False
    return out


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Train/validation/test splits as numpy arrays.

    Images are float32 ``(N, H, W, C)`` in ``[0, 1]`` (pixel / 255), labels int32 ``(N,)`` in
    ``[0, num_classes)`` (given as any integer dtype; float labels are a ``DataError``). Every
    array is C-contiguous and read-only; the validation split may be empty (``V == 0``).
    Equality is identity (arrays make ``==`` ambiguous).
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int

    def __post_init__(self) -> None:
        shape = None
        for split in _SPLITS:
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            if np.ndim(images) != 4 or np.ndim(labels) != 1 or len(images) != len(labels):
                raise DataError(
                    f"{self.name}/{split}: need images (N, H, W, C) and labels (N,), got "
                    f"{np.shape(images)} and {np.shape(labels)}"
                )
            if shape is not None and np.shape(images)[1:] != shape:
                raise DataError(f"{self.name}/{split}: image shape differs from {shape}")
            shape = np.shape(images)[1:]
            dtype = np.asarray(labels).dtype
            if not np.issubdtype(dtype, np.integer):  # 1.5 would be cast to class 1 silently
                raise DataError(f"{self.name}/{split}: labels must be integers, got dtype {dtype}")
            if len(labels) and (np.min(labels) < 0 or np.max(labels) >= self.num_classes):
                raise DataError(f"{self.name}/{split}: labels outside [0, {self.num_classes})")
            object.__setattr__(self, f"{split}_images", _frozen(images, np.float32))
            object.__setattr__(self, f"{split}_labels", _frozen(labels, np.int32))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)``."""
        h, w, c = self.train_images.shape[1:]
        return int(h), int(w), int(c)

    def describe(self) -> str:
        """One line: name, split sizes, image shape and number of classes."""
        h, w, c = self.image_shape
        return (
            f"{self.name}: train {len(self.train_labels)}, val {len(self.val_labels)}, "
            f"test {len(self.test_labels)}; images {h}x{w}x{c}; {self.num_classes} classes"
        )

    def __repr__(self) -> str:
        return f"Dataset({self.describe()})"
