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
from cnn_jax.initializers import init_bias, init_kernel
from cnn_jax.layers.base import LayerParams, LayerPlan, Shape, positive_int, spatial_input
from cnn_jax.layers.conv import DIMENSION_NUMBERS, pad_past_span
from cnn_jax.shapes import Padding, Window, call_window, window_geometry


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
class LocallyConnected:
    """Like `Conv`, with a separate kernel and bias at every output position."""

    features: int
    kernel: int | tuple[int, int] = 5
    stride: int | tuple[int, int] = 1
    padding: Padding = "VALID"
    dilation: int | tuple[int, int] = 1
    activation: str = "relu"
    kind = "local"

    def plan(self, name: str, input_shape: Shape) -> LayerPlan:
        height, width, channels = spatial_input(name, self.kind, input_shape)
        maps = positive_int(name, "features", self.features)
        get_activation(self.activation, name)
        rows, cols = window_geometry(
            name, self.kind, (height, width), self.kernel, self.stride, self.padding, self.dilation
        )
        positions = rows.size_out * cols.size_out
        kernel_area = rows.kernel * cols.kernel
        return LayerPlan(
            name=name, kind=self.kind, input_shape=(height, width, channels),
            output_shape=(rows.size_out, cols.size_out, maps),
            params=positions * (kernel_area * channels + 1) * maps,
            macs=positions * maps * kernel_area * channels,
            geometry=Window(rows, cols), activation=self.activation,
            detail=f"{maps} maps {rows.kernel}×{cols.kernel}, unshared",
        )

    def init(self, key: jax.Array, plan: LayerPlan, scheme: str, pool_area: int = 1) -> LayerParams:
        rows, cols = plan.geometry
        out_h, out_w, maps = plan.output_shape
        shape = (out_h, out_w, rows.kernel, cols.kernel, plan.input_shape[-1], maps)
        kernel_key, bias_key = jax.random.split(key)
        return {
            "kernel": init_kernel(
                scheme, kernel_key, shape, batch_axis=(0, 1),
                nielsen_fan_out=max(1, maps * rows.kernel * cols.kernel // pool_area),
            ),
            "bias": init_bias(scheme, bias_key, (out_h, out_w, maps)),
        }

    def apply(
        self, params: LayerParams, x: jax.Array, plan: LayerPlan, *, train: bool = False,
        key: jax.Array | None = None, formulation: Any = None,
    ) -> jax.Array:
        z = local2d(x, params["kernel"], params["bias"], plan.geometry)
        return get_activation(self.activation, plan.name)(z)
