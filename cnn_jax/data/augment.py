"""Training-set expansion by one-pixel shifts (Nielsen, chapter 6)."""

from __future__ import annotations

import numpy as np

EXPANSION_FACTOR = 5  # each image plus its four one-pixel shifts


def expand_with_shifts(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns each image plus its four one-pixel shifts, zero-filled: 5x the data.

    Args:
      images: ``(N, H, W)`` or ``(N, H, W, C)``, any dtype (kept).
      labels: ``(N,)``.

    Returns:
      ``(images5, labels5)`` with ``5 * N`` rows in five blocks of N, each in the input order:
      the originals, then the content shifted up, down, left, right by one pixel (the row or
      column that moves in is zero). ``labels5`` is ``labels`` repeated five times
      (``np.tile``). Shuffle before training: the blocks are not interleaved.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim not in (3, 4) or labels.shape != images.shape[:1]:
        raise ValueError(
            f"need images (N, H, W[, C]) and labels (N,), got {images.shape} and {labels.shape}"
        )
    n = len(images)
    out = np.zeros((EXPANSION_FACTOR * n, *images.shape[1:]), dtype=images.dtype)
    out[:n] = images
    up, down, left, right = (out[k * n : (k + 1) * n] for k in range(1, 5))
    up[:, :-1] = images[:, 1:]
    down[:, 1:] = images[:, :-1]
    left[:, :, :-1] = images[:, :, 1:]
    right[:, :, 1:] = images[:, :, :-1]
    return out, np.tile(labels, EXPANSION_FACTOR)
