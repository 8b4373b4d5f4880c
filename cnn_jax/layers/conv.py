"""Convolution: local receptive fields with shared weights.

Every output neuron (j, k) of feature map f computes

    σ(b_f + Σ_c Σ_l Σ_m w_{l,m,c,f} · a_{j·s+l·d, k·s+m·d, c})

with the same kernel w_f and bias b_f at every position, so one map detects one feature anywhere.
Layout: images NHWC, kernels HWIO (kh, kw, in_channels, maps).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from cnn_jax.activations import get_activation
from cnn_jax.layers.base import KernelLayer, LayerParams, LayerPlan
from cnn_jax.shapes import Padding, Pairs, Window, call_window

DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


def pad_past_span(x: jax.Array, window: Window) -> tuple[jax.Array, Pairs]:
    """(x, padding) for a `lax` sliding window: x zero-padded by `jnp.pad` (and padding 0) if a
    side's padding reaches the dilated kernel span dilation·(k−1)+1, else x and its padding.

    Why: the gradient wrt x of a convolution is a convolution with low padding span − 1 − pad_lo
    (the high side alike), negative once a padding reaches the span, and XLA:CPU computes such
    float32 convolutions wrongly (values like 2e+23 that change from run to run; float64 is
    right). Padded beforehand, the gradient is a convolution with padding ≥ 0 and a slice.
    VALID, SAME and paddings below the span keep the single convolution.
    """
    if all(max(axis.pad_lo, axis.pad_hi) < axis.effective_kernel for axis in window):
        return x, window.padding
    return jnp.pad(x, ((0, 0), *window.padding, (0, 0))), ((0, 0), (0, 0))


def conv2d(
    x: jax.Array, kernel: jax.Array, bias: jax.Array, window: Window | None = None, *,
    stride: int | tuple[int, int] | None = None, padding: Padding | None = None,
    dilation: int | tuple[int, int] | None = None,
) -> jax.Array:
    """Shared-weight convolution plus bias (no activation).

    Args:
      x: (batch, height, width, in_channels).
      kernel: (kh, kw, in_channels, maps), one kernel per map, shared by every position.
      bias: (maps,), one bias per map.
      window: a layer plan's `Window`; or, by keyword, stride (default 1), padding ('VALID',
        'SAME', an int or explicit ((top, bottom), (left, right)); default none) and dilation
        (default 1).
    Returns:
      (batch, out_height, out_width, maps).
    Raises:
      ShapeError: impossible geometry or in_channels ≠ x's channels (at trace time).
    """
    window = call_window("conv2d", "conv", x.shape, kernel.shape, window, stride=stride,
                         padding=padding, dilation=dilation)
    x, pads = pad_past_span(x, window)  # works around an XLA:CPU float32 gradient bug
    y = jax.lax.conv_general_dilated(
        x, kernel, window_strides=window.strides, padding=pads, rhs_dilation=window.dilation,
        dimension_numbers=DIMENSION_NUMBERS,
    )
    return y + bias


@dataclasses.dataclass(frozen=True)
class Conv(KernelLayer):
    """A convolutional layer: `features` maps of `kernel` size, shared over all positions."""

    kind = "conv"
    shared = True

    def apply(
        self, params: LayerParams, x: jax.Array, plan: LayerPlan, *, train: bool = False,
        key: jax.Array | None = None, formulation: Any = None,
    ) -> jax.Array:
        conv = conv2d if formulation is None else formulation.conv2d
        z = conv(x, params["kernel"], params["bias"], plan.geometry)
        return get_activation(self.activation, plan.name)(z)

