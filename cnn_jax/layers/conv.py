"""Convolution: local receptive fields with shared weights.

Every output neuron (j, k) of feature map f computes

    σ(b_f + Σ_c Σ_l Σ_m w_{l,m,c,f} · a_{j·s+l·d, k·s+m·d, c})

with the same kernel w_f and bias b_f at every position, so one map detects one feature anywhere.
Layout: images NHWC, kernels HWIO (kh, kw, in_channels, maps).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from cnn_jax.activations import get_activation
from cnn_jax.initializers import init_bias, init_kernel
from cnn_jax.layers.base import (
    LayerPlan,
    Params,
    Shape,
    positive_int,
    spatial_input,
    window_args,
)
from cnn_jax.shapes import Padding, ShapeError, window_geometry

DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


def conv2d(
    x: jax.Array, kernel: jax.Array, bias: jax.Array, *, stride: tuple[int, int] = (1, 1),
    padding: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0)),
    dilation: tuple[int, int] = (1, 1),
) -> jax.Array:
    """Shared-weight convolution plus bias (no activation).

    Args:
      x: (batch, height, width, in_channels).
      kernel: (kh, kw, in_channels, maps), one kernel per map, shared by every position.
      bias: (maps,), one bias per map.
      padding: explicit ((top, bottom), (left, right)).
    Returns:
      (batch, out_height, out_width, maps).
    """
    y = jax.lax.conv_general_dilated(
        x, kernel, window_strides=stride, padding=padding, rhs_dilation=dilation,
        dimension_numbers=DIMENSION_NUMBERS,
    )
    return y + bias


def conv2d_im2col(
    x: jax.Array, kernel: jax.Array, bias: jax.Array, *, stride: tuple[int, int] = (1, 1),
    padding: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0)),
    dilation: tuple[int, int] = (1, 1),
) -> jax.Array:
    """`conv2d` as im2col + one matrix product: the same function, another XLA program.

    The kh·kw shifted (strided, dilated) views of the input are concatenated on the channel axis
    in (i, j, c) order — the order of the HWIO kernel reshaped to (kh·kw·in_channels, maps) — so
    every output position is one row of a matrix product. Faster on XLA:CPU at small batches.
    """
    kh, kw, channels, maps = kernel.shape
    x, (out_h, out_w) = _padded(x, kernel.shape, stride, padding, dilation)
    batch, height, width, _ = x.shape
    # two passes: kw shifts along the width, then kh shifts along the height
    width_span = (out_w - 1) * stride[1] + 1
    x = _concat_channels([
        jax.lax.slice(x, (0, 0, j * dilation[1], 0),
                      (batch, height, j * dilation[1] + width_span, channels), (1, 1, stride[1], 1))
        for j in range(kw)
    ])
    height_span = (out_h - 1) * stride[0] + 1
    columns = _concat_channels([
        jax.lax.slice(x, (0, i * dilation[0], 0, 0),
                      (batch, i * dilation[0] + height_span, out_w, kw * channels),
                      (1, stride[0], 1, 1))
        for i in range(kh)
    ])
    return columns @ kernel.reshape(kh * kw * channels, maps) + bias


def _padded(x: jax.Array, kernel_shape: tuple[int, ...], stride: tuple[int, int],
            padding: tuple[tuple[int, int], tuple[int, int]], dilation: tuple[int, int]):
    """(x zero-padded, (out_h, out_w)) by the size formula on the padded input."""
    x = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    out_h = (x.shape[1] - dilation[0] * (kernel_shape[0] - 1) - 1) // stride[0] + 1
    out_w = (x.shape[2] - dilation[1] * (kernel_shape[1] - 1) - 1) // stride[1] + 1
    return x, (out_h, out_w)


def _concat_channels(parts: list[jax.Array]) -> jax.Array:
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)


OFFSETS_MAX_MAPS = 4


def conv2d_offsets(
    x: jax.Array, kernel: jax.Array, bias: jax.Array, *, stride: tuple[int, int] = (1, 1),
    padding: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0)),
    dilation: tuple[int, int] = (1, 1),
) -> jax.Array:
    """`conv2d` whose forward pass is the course's formula for a layer with one input channel and
    at most `OFFSETS_MAX_MAPS` maps:

        z_{j,k} = b + Σ_l Σ_m w_{l,m} · a_{j·s + l·d, k·s + m·d}

    one broadcast multiply per kernel offset (l, m), which XLA fuses into a single pass over a
    small batch (the course's 1 → 3 maps layer, 128 images: 0.11 ms vs 2.7 ms for XLA:CPU's
    convolution). The gradient is `conv2d`'s own (custom VJP). Other layers use `conv2d`: with
    more maps or input channels the per-offset products measured slower.
    """
    if kernel.shape[2] != 1 or kernel.shape[3] > OFFSETS_MAX_MAPS:
        return conv2d(x, kernel, bias, stride=stride, padding=padding, dilation=dilation)
    return _sum_over_offsets(x, kernel, tuple(stride), tuple(map(tuple, padding)),
                             tuple(dilation)) + bias


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _sum_over_offsets(x, kernel, stride, padding, dilation):
    kh, kw, _, maps = kernel.shape
    x, (out_h, out_w) = _padded(x, kernel.shape, stride, padding, dilation)
    batch = x.shape[0]
    total = jnp.zeros((batch, out_h, out_w, maps), x.dtype)
    for row in range(kh):
        for col in range(kw):
            view = jax.lax.slice(
                x, (0, row * dilation[0], col * dilation[1], 0),
                (batch, row * dilation[0] + (out_h - 1) * stride[0] + 1,
                 col * dilation[1] + (out_w - 1) * stride[1] + 1, 1),
                (1, stride[0], stride[1], 1))
            total = total + view * kernel[row, col, 0]
    return total


def _sum_over_offsets_forward(x, kernel, stride, padding, dilation):
    return _sum_over_offsets(x, kernel, stride, padding, dilation), (x, kernel)


def _sum_over_offsets_backward(stride, padding, dilation, residuals, grad):
    def xla_conv(x, kernel):
        return jax.lax.conv_general_dilated(x, kernel, stride, padding, rhs_dilation=dilation,
                                            dimension_numbers=DIMENSION_NUMBERS)

    return jax.vjp(xla_conv, *residuals)[1](grad)


_sum_over_offsets.defvjp(_sum_over_offsets_forward, _sum_over_offsets_backward)


CONV_IMPLS = {"xla": conv2d, "im2col": conv2d_im2col, "offsets": conv2d_offsets}


@dataclasses.dataclass(frozen=True)
class Conv:
    """A convolutional layer: `features` maps of `kernel` size, shared over all positions.

    `impl` picks the formulation ('xla': `lax.conv_general_dilated`, 'im2col', 'offsets'); all
    compute the same function (see `cnn_jax.train.steps` for which is faster where).
    """

    features: int
    kernel: int | tuple[int, int] = 5
    stride: int | tuple[int, int] = 1
    padding: Padding = "VALID"
    dilation: int | tuple[int, int] = 1
    activation: str = "relu"
    impl: str = "xla"
    kind = "conv"

    def plan(self, name: str, input_shape: Shape) -> LayerPlan:
        height, width, channels = spatial_input(name, self.kind, input_shape)
        maps = positive_int(name, "features (number of maps)", self.features)
        get_activation(self.activation, name)
        if self.impl not in CONV_IMPLS:
            raise ShapeError(
                f"layer '{name}': unknown conv impl {self.impl!r}; choose one of {list(CONV_IMPLS)}"
            )
        rows, cols = window_geometry(
            name, self.kind, (height, width), self.kernel, self.stride, self.padding, self.dilation
        )
        kernel_area = rows.kernel * cols.kernel
        return LayerPlan(
            name=name, kind=self.kind, input_shape=(height, width, channels),
            output_shape=(rows.size_out, cols.size_out, maps),
            params=kernel_area * channels * maps + maps,
            macs=rows.size_out * cols.size_out * maps * kernel_area * channels,
            geometry=(rows, cols), activation=self.activation,
            detail=f"{maps} maps {rows.kernel}×{cols.kernel}, shared",
        )

    def init(self, key: jax.Array, plan: LayerPlan, scheme: str, pool_area: int = 1) -> Params:
        rows, cols = plan.geometry
        maps = plan.output_shape[-1]
        shape = (rows.kernel, cols.kernel, plan.input_shape[-1], maps)
        kernel_key, bias_key = jax.random.split(key)
        return {
            "kernel": init_kernel(
                scheme, kernel_key, shape,
                nielsen_fan_out=max(1, maps * rows.kernel * cols.kernel // pool_area),
            ),
            "bias": init_bias(scheme, bias_key, (maps,)),
        }

    def apply(
        self, params: Params, x: jax.Array, plan: LayerPlan, *, train: bool = False,
        key: jax.Array | None = None,
    ) -> jax.Array:
        z = CONV_IMPLS[self.impl](x, params["kernel"], params["bias"], **window_args(plan))
        return get_activation(self.activation, plan.name)(z)

