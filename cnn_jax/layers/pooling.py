"""Pooling: summarise each window of a feature map by one number (`jax.lax.reduce_window`).

max: the largest activation (is the feature anywhere in the window?); avg: the mean; l2: the root
of the sum of squares (its gradient at an all-zero window is 0, as PyTorch's `lp_pool2d`). Padded
positions never win a max and are not counted in an average; no window may lie entirely in the
padding.
Pooling has no parameters and acts on every map separately. `none` passes the maps through
unchanged, so that a sweep over pool types can switch pooling off.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from cnn_jax.errors import LayerError
from cnn_jax.layers.base import LayerParams, LayerPlan, ParameterFree, Shape, spatial_input
from cnn_jax.shapes import Padding, Window, pool_geometry, pool_window

POOL_TYPES = ("max", "avg", "l2", "none")


def pool2d(
    x: jax.Array, kind: str, window: Window | int | Sequence[int],
    stride: int | Sequence[int] | None = None, padding: Padding | None = None,
) -> jax.Array:
    """Pools x (batch, height, width, maps) over spatial windows → (batch, out_h, out_w, maps).

    window: a layer plan's `Window`, or the window size with `stride` (default: the window's,
    non-overlapping) and `padding` (default: none). Raises `ShapeError` (at trace time) for
    impossible geometry or a window all in the padding.
    """
    if kind == "none":
        return x
    if kind not in POOL_TYPES:
        raise ValueError(f"unknown pool type {kind!r}; choose one of {list(POOL_TYPES)}")
    window = pool_window("pool2d", x.shape, window, stride, padding)
    dims, strides = (1, *window.kernel, 1), (1, *window.strides, 1)
    pads = ((0, 0), *window.padding, (0, 0))
    if kind == "max":
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, dims, strides, pads)
    if kind == "l2":
        squares = jax.lax.reduce_window(x * x, 0.0, jax.lax.add, dims, strides, pads)
        # d√s/ds = 1/(2√s) is infinite at s = 0 (an all-zero window) and ∞·0 = NaN. The inner
        # where takes the root of s > 0 only, so the gradient there is 0; the outer gives √0 = 0.
        positive = squares > 0
        return jnp.where(positive, jnp.sqrt(jnp.where(positive, squares, 1.0)), 0.0)
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, dims, strides, pads)  # avg
    if window.unpadded:
        return total / (window.rows.kernel * window.cols.kernel)
    ones = jnp.ones((1, *x.shape[1:3], 1), x.dtype)
    count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, dims, strides, pads)
    return total / count


@dataclasses.dataclass(frozen=True)
class Pool(ParameterFree):
    """`pool_type` pooling ('max', 'avg', 'l2', 'none') over `window`; a stride of None (the
    default) or 'window' is the window's size (non-overlapping windows)."""

    pool_type: str = "max"
    window: int | tuple[int, int] = 2
    stride: int | tuple[int, int] | str | None = None
    padding: Padding = "VALID"
    kind = "pool"

    def plan(self, name: str, input_shape: Shape) -> LayerPlan:
        height, width, channels = spatial_input(name, self.kind, input_shape)
        if self.pool_type not in POOL_TYPES:
            raise LayerError(
                f"layer '{name}': unknown pool type {self.pool_type!r}; "
                f"choose one of {list(POOL_TYPES)}", "pool_type")
        if self.pool_type == "none":
            return LayerPlan(
                name=name, kind=self.kind, input_shape=(height, width, channels),
                output_shape=(height, width, channels), params=0, macs=0, detail="none",
                pool_type="none",
            )
        stride = self.window if self.stride in (None, "window") else self.stride
        rows, cols = pool_geometry(name, (height, width), self.window, stride, self.padding)
        return LayerPlan(
            name=name, kind=self.kind, input_shape=(height, width, channels),
            output_shape=(rows.size_out, cols.size_out, channels), params=0, macs=0,
            geometry=Window(rows, cols), detail=f"{self.pool_type} {rows.kernel}×{cols.kernel}",
            pool_type=self.pool_type,
        )

    def apply(
        self, params: LayerParams, x: jax.Array, plan: LayerPlan, *, train: bool = False,
        key: jax.Array | None = None, formulation: Any = None,
    ) -> jax.Array:
        if plan.geometry is None:
            return x
        pool = pool2d if formulation is None else formulation.pool2d
        return pool(x, self.pool_type, plan.geometry)
