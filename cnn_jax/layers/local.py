"""Locally connected layer: local receptive fields *without* shared weights.

The same sliding window as `conv`, but every output position (j, k) has its own kernel and bias:

    σ(b_{j,k,f} + Σ_c Σ_l Σ_m w_{j,k,l,m,c,f} · a_{j·s+l·d, k·s+m·d, c})

It exists to show what weight sharing buys: the same receptive fields, out_h·out_w times the
parameters. Kernels are stored readably as (out_h, out_w, kh, kw, in_channels, maps).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from cnn_jax.activations import get_activation
from cnn_jax.layers.base import KernelLayer, LayerParams, LayerPlan
from cnn_jax.layers.conv import DIMENSION_NUMBERS, pad_past_span
from cnn_jax.shapes import Padding, Window, call_window


def local2d(
    x: jax.Array, kernel: jax.Array, bias: jax.Array, window: Window | None = None, *,
    stride: int | tuple[int, int] | None = None, padding: Padding | None = None,
    dilation: int | tuple[int, int] | None = None,
) -> jax.Array:
    """Unshared local connections plus per-position bias (no activation).

    Args:
      x: (batch, height, width, in_channels).
      kernel: (out_h, out_w, kh, kw, in_channels, maps): one kernel per output position.
      bias: (out_h, out_w, maps): one bias per output position and map.
      window: a layer plan's `Window`, or stride, padding and dilation by keyword (as `conv2d`).
    Returns:
      (batch, out_h, out_w, maps).
    Raises:
      ShapeError: impossible geometry, in_channels ≠ x's channels or (out_h, out_w) ≠ the output
        size (at trace time).
    """
    window = call_window("local2d", "local", x.shape, kernel.shape, window, stride=stride,
                         padding=padding, dilation=dilation)
    x, pads = pad_past_span(x, window)  # the same XLA:CPU gradient bug as conv2d
    out_h, out_w, kh, kw, in_channels, maps = kernel.shape
    # conv_general_dilated_local fuses the window into the I axis in the order (channel, kh, kw).
    fused = kernel.transpose(0, 1, 4, 2, 3, 5).reshape(out_h, out_w, in_channels * kh * kw, maps)
    y = jax.lax.conv_general_dilated_local(
        x, fused, window_strides=window.strides, padding=pads, filter_shape=(kh, kw),
        rhs_dilation=window.dilation,
        dimension_numbers=DIMENSION_NUMBERS,
    )
    return y + bias


@dataclasses.dataclass(frozen=True)
class LocallyConnected(KernelLayer):
    """Like `Conv`, with a separate kernel and bias at every output position."""

    kind = "local"
    shared = False

    def apply(
        self, params: LayerParams, x: jax.Array, plan: LayerPlan, *, train: bool = False,
        key: jax.Array | None = None, formulation: Any = None,
    ) -> jax.Array:
        z = local2d(x, params["kernel"], params["bias"], plan.geometry)
        return get_activation(self.activation, plan.name)(z)
