"""Pooling: summarise each window of a feature map by one number (`jax.lax.reduce_window`).

max: the largest activation (is the feature anywhere in the window?); avg: the mean; l2: the root
of the sum of squares. Padded positions never win a max and are not counted in an average.
Pooling has no parameters and acts on every map separately. `none` passes the maps through
unchanged, so that a sweep over pool types can switch pooling off.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from cnn_jax.layers.base import LayerPlan, Params, Shape, spatial_input, window_args
from cnn_jax.shapes import Padding, ShapeError, window_geometry

POOL_TYPES = ("max", "avg", "l2", "none")
POOL_IMPLS = ("xla", "reshape")


def pool2d(
    x: jax.Array, kind: str, window: tuple[int, int], stride: tuple[int, int],
    padding: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0)), impl: str = "xla",
) -> jax.Array:
    """Pools x (batch, height, width, maps) over spatial windows → (batch, out_h, out_w, maps).

    impl='reshape' computes non-overlapping, unpadded max/avg pooling (window = stride) as a
    reshape and a reduction: the same values, and a gradient that is a cheap compare-and-select
    instead of XLA's `select_and_scatter` (2× less CPU time per step on XLA:CPU). Within a
    window of equal maxima the gradient is shared instead of going to the first. Other windows
    always use `lax.reduce_window` ('xla').
    """
    if impl not in POOL_IMPLS:
        raise ValueError(f"unknown pool impl {impl!r}; choose one of {list(POOL_IMPLS)}")
    if kind == "none":
        return x
    non_overlapping = tuple(window) == tuple(stride) and all(
        lo == hi == 0 for lo, hi in padding)
    if impl == "reshape" and kind in ("max", "avg") and non_overlapping:
        (wh, ww), (out_h, out_w) = window, (x.shape[1] // window[0], x.shape[2] // window[1])
        blocks = x[:, :out_h * wh, :out_w * ww, :].reshape(
            x.shape[0], out_h, wh, out_w, ww, x.shape[-1])
        return blocks.max(axis=(2, 4)) if kind == "max" else blocks.mean(axis=(2, 4))
    dims = (1, *window, 1)
    strides = (1, *stride, 1)
    pads = ((0, 0), *padding, (0, 0))
    if kind == "max":
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, dims, strides, pads)
    if kind == "l2":
        return jnp.sqrt(jax.lax.reduce_window(x * x, 0.0, jax.lax.add, dims, strides, pads))
    if kind == "avg":
        total = jax.lax.reduce_window(x, 0.0, jax.lax.add, dims, strides, pads)
        if all(lo == hi == 0 for lo, hi in padding):
            return total / (window[0] * window[1])
        ones = jnp.ones((1, *x.shape[1:3], 1), x.dtype)
        count = jax.lax.reduce_window(ones, 0.0, jax.lax.add, dims, strides, pads)
        return total / count
    raise ValueError(f"unknown pool type {kind!r}; choose one of {list(POOL_TYPES)}")


@dataclasses.dataclass(frozen=True)
class Pool:
    """`pool_type` pooling ('max', 'avg', 'l2', 'none') over `window`; stride defaults to window."""

    pool_type: str = "max"
    window: int | tuple[int, int] = 2
    stride: int | tuple[int, int] | None = None
    padding: Padding = "VALID"
    impl: str = "xla"
    kind = "pool"

    def plan(self, name: str, input_shape: Shape) -> LayerPlan:
        height, width, channels = spatial_input(name, self.kind, input_shape)
        if self.pool_type not in POOL_TYPES:
            raise ShapeError(
                f"layer '{name}': unknown pool type {self.pool_type!r}; "
                f"choose one of {list(POOL_TYPES)}"
            )
        if self.pool_type == "none":
            return LayerPlan(
                name=name, kind=self.kind, input_shape=(height, width, channels),
                output_shape=(height, width, channels), params=0, macs=0, detail="none",
            )
        if self.impl not in POOL_IMPLS:
            raise ShapeError(
                f"layer '{name}': unknown pool impl {self.impl!r}; choose one of {list(POOL_IMPLS)}"
            )
        stride = self.window if self.stride is None else self.stride
        rows, cols = window_geometry(
            name, self.kind, (height, width), self.window, stride, self.padding
        )
        return LayerPlan(
            name=name, kind=self.kind, input_shape=(height, width, channels),
            output_shape=(rows.size_out, cols.size_out, channels), params=0, macs=0,
            geometry=(rows, cols), detail=f"{self.pool_type} {rows.kernel}×{cols.kernel}",
        )

    def init(self, key: jax.Array, plan: LayerPlan, scheme: str, pool_area: int = 1) -> Params:
        return {}

    def apply(
        self, params: Params, x: jax.Array, plan: LayerPlan, *, train: bool = False,
        key: jax.Array | None = None,
    ) -> jax.Array:
        if plan.geometry is None:
            return x
        rows, cols = plan.geometry
        args = window_args(plan)
        return pool2d(x, self.pool_type, (rows.kernel, cols.kernel), args["stride"],
                      args["padding"], self.impl)
