"""Faster formulations of the same functions, and the one rule that picks them.

The layers (`cnn_jax.layers`) compute the course's mathematics with `lax.conv_general_dilated`
and `lax.reduce_window`. XLA:CPU runs a few of those programs slowly, so training on a CPU swaps
in other programs for the *same* functions (same values, same gradients up to float rounding).
Where each wins was measured with `python -m experiments.formulation_grid` for every network
that ships, at batches 10 to 1024 (BENCHMARKS.md, "Formulations"):

* **reshape pooling** (`pool2d_reshape`): non-overlapping, unpadded max/avg pooling as a reshape
  and a reduction. Its gradient is an elementwise select instead of XLA's `select_and_scatter`.
  Wins for every network and batch with such a pool; 'auto' uses it on CPU.
* **offsets convolution** (`conv2d_offsets`): a layer with one input channel and at most
  `OFFSETS_MAX_MAPS` maps as the course's sum over kernel offsets,
  z = b + Σ_l Σ_m w_{l,m} · a_{j·s+l·d, k·s+m·d}, one broadcast multiply per offset, which XLA
  fuses into one pass. Wins in CPU training steps of such layers (the course's 1 → 3 maps net);
  loses with more maps (LeNet-5's 6) and in evaluation, so 'auto' uses it there only.
* **micro-batched gradients** (`Formulation.microbatches`, computed in `cnn_jax.train.experiment`):
  the batch's gradient as the mean over independent micro-batches that XLA:CPU runs
  concurrently. Two parts win from a batch of `MICROBATCH_MIN_BATCH` up; smaller batches, more
  parts, and networks whose dense layers do half or more of the multiply-adds lose.
* **canonical-gradient convolution** (`conv2d_canonical`): the gradient convolutions in the
  forward pass's own NHWC × HWIO layout. Inside a `lax.scan` body XLA:CPU runs JAX's own
  gradient convolutions as an unoptimised loop; these it runs at full speed, which is what
  makes scan-fused steps worth having on CPU (see `pick_strategy`).
* **im2col convolution** (`conv2d_im2col`): the kh·kw shifted views as one matrix product. Won
  only for small first layers at batch 10 (LeNet-5, Nielsen's single conv-pool net) and not in
  every run; never picked by 'auto', available as `formulation.conv='im2col'`.

* **one jitted step per call vs `lax.scan`-fused chunks** (`pick_strategy`): on GPU/TPU the
  fused chunk removes the per-step dispatch ('scan'); on CPU it pays for batches under
  `MICROBATCH_MIN_BATCH`, with the canonical-gradient convolution.

On GPU/TPU 'auto' is the layers' own formulation with one batch per step. `choose` is the only
place that decides; the training steps pass its result to
`Network.apply(..., formulation=...)`, and the conv and pool layers call its `conv2d` and
`pool2d` with their plan's `Window` (`cnn_jax.shapes`), as they call their own functions.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from cnn_jax.errors import ConfigError
from cnn_jax.layers.base import LayerPlan
from cnn_jax.layers.conv import conv2d
from cnn_jax.layers.pooling import pool2d
from cnn_jax.shapes import Padding, Pairs, Window, call_window, pool_window

OFFSETS_MAX_MAPS = 4
MICROBATCH_MIN_BATCH = 128  # smaller batches: one part
MICROBATCH_PARTS = 2
DENSE_SHARE_LIMIT = 0.5


# -- convolution ------------------------------------------------------------------------------
# Each program takes what `conv2d` takes: a layer plan's `Window`, or stride/padding/dilation by
# keyword (`shapes.call_window` checks either against x and the kernel).
def conv2d_im2col(x: jax.Array, kernel: jax.Array, bias: jax.Array, window: Window | None = None,
                  *, stride: int | tuple[int, int] | None = None, padding: Padding | None = None,
                  dilation: int | tuple[int, int] | None = None) -> jax.Array:
    """`conv2d` as im2col + one matrix product.

    The kh·kw shifted (strided, dilated) views of the input are concatenated on the channel axis
    in (i, j, c) order — the order of the HWIO kernel reshaped to (kh·kw·in_channels, maps) — so
    every output position is one row of a matrix product.
    """
    window = call_window("conv2d_im2col", "conv", x.shape, kernel.shape, window, stride=stride,
                         padding=padding, dilation=dilation)
    (sh, sw), (dh, dw), (out_h, out_w) = window.strides, window.dilation, window.size_out
    kh, kw, channels, maps = kernel.shape
    x = jnp.pad(x, ((0, 0), *window.padding, (0, 0)))
    batch, height, width, _ = x.shape
    width_span = (out_w - 1) * sw + 1  # kw shifts along the width, then kh along height
    x = _concat_channels([
        jax.lax.slice(x, (0, 0, j * dw, 0), (batch, height, j * dw + width_span, channels),
                      (1, 1, sw, 1))
        for j in range(kw)
    ])
    height_span = (out_h - 1) * sh + 1
    columns = _concat_channels([
        jax.lax.slice(x, (0, i * dh, 0, 0), (batch, i * dh + height_span, out_w, kw * channels),
                      (1, sh, 1, 1))
        for i in range(kh)
    ])
    return columns @ kernel.reshape(kh * kw * channels, maps) + bias


def _concat_channels(parts: list[jax.Array]) -> jax.Array:
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)


def offsets_apply(in_channels: int, maps: int) -> bool:
    """Whether `conv2d_offsets` sums over offsets for a layer of this size (else `conv2d`)."""
    return in_channels == 1 and maps <= OFFSETS_MAX_MAPS


def conv2d_offsets(x: jax.Array, kernel: jax.Array, bias: jax.Array, window: Window | None = None,
                   *, stride: int | tuple[int, int] | None = None, padding: Padding | None = None,
                   dilation: int | tuple[int, int] | None = None) -> jax.Array:
    """`conv2d` whose forward pass is the course's sum over kernel offsets, for layers with one
    input channel and at most `OFFSETS_MAX_MAPS` maps (`conv2d` itself for any other layer).

    Derivatives are `conv2d`'s own (a custom JVP that is linear in the tangents, so forward mode,
    `jax.grad` and higher orders all work): the backward pass is XLA's convolution gradient.
    """
    window = call_window("conv2d_offsets", "conv", x.shape, kernel.shape, window, stride=stride,
                         padding=padding, dilation=dilation)
    if not offsets_apply(kernel.shape[2], kernel.shape[3]):
        return conv2d(x, kernel, bias, window)
    return _sum_over_offsets(x, kernel, window) + bias


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _sum_over_offsets(x, kernel, window):
    kh, kw, _, maps = kernel.shape
    (sh, sw), (dh, dw), (out_h, out_w) = window.strides, window.dilation, window.size_out
    x = jnp.pad(x, ((0, 0), *window.padding, (0, 0)))
    batch = x.shape[0]
    total = jnp.zeros((batch, out_h, out_w, maps), x.dtype)
    for row in range(kh):
        for col in range(kw):
            view = jax.lax.slice(
                x, (0, row * dh, col * dw, 0),
                (batch, row * dh + (out_h - 1) * sh + 1, col * dw + (out_w - 1) * sw + 1, 1),
                (1, sh, sw, 1))
            total = total + view * kernel[row, col, 0]
    return total


@_sum_over_offsets.defjvp
def _sum_over_offsets_jvp(window, primals, tangents):
    x, kernel = primals
    x_dot, kernel_dot = tangents
    zero = jnp.zeros((kernel.shape[-1],), x.dtype)
    tangent = conv2d(x_dot, kernel, zero, window) + conv2d(x, kernel_dot, zero, window)
    return _sum_over_offsets(x, kernel, window), tangent


def canonical_applies(window: Window) -> bool:
    """Whether `conv2d_canonical` computes its own gradients for this geometry (else `conv2d`)."""
    return window.strides == (1, 1) and window.dilation == (1, 1)


def conv2d_canonical(x: jax.Array, kernel: jax.Array, bias: jax.Array,
                     window: Window | None = None, *,
                     stride: int | tuple[int, int] | None = None, padding: Padding | None = None,
                     dilation: int | tuple[int, int] | None = None) -> jax.Array:
    """`conv2d` whose gradients are convolutions in the forward pass's own layout.

    JAX differentiates a convolution into convolutions with swapped dimension labels
    (`b01f_01oi`, `f01b_i01o`). XLA:CPU rewrites those into its fast layout only in a
    program's entry computation; inside a `lax.scan` body it runs them as an unoptimised loop.
    Here, for stride 1 and no dilation (padding applied beforehand), the input gradient is the
    full correlation of the output gradient with the flipped kernel, in/out swapped, and the
    kernel gradient correlates the input's channels (as the batch) with the output gradient
    (the batch as input features): every convolution is NHWC × HWIO → NHWC. Other geometry:
    `conv2d`.
    """
    window = call_window("conv2d_canonical", "conv", x.shape, kernel.shape, window,
                         stride=stride, padding=padding, dilation=dilation)
    if not canonical_applies(window):
        return conv2d(x, kernel, bias, window)
    return _valid_conv(jnp.pad(x, ((0, 0), *window.padding, (0, 0))), kernel) + bias


def _nhwc_conv(x: jax.Array, kernel: jax.Array, padding: Pairs = ((0, 0), (0, 0))) -> jax.Array:
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


@jax.custom_vjp
def _valid_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return _nhwc_conv(x, kernel)


def _valid_conv_forward(x, kernel):
    return _nhwc_conv(x, kernel), (x, kernel)


def _valid_conv_backward(residuals, grad_y):
    x, kernel = residuals
    kh, kw = kernel.shape[:2]
    flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)  # (kh, kw, maps, in_channels)
    grad_x = _nhwc_conv(grad_y, flipped, ((kh - 1, kh - 1), (kw - 1, kw - 1)))
    grad_kernel = _nhwc_conv(x.transpose(3, 1, 2, 0), grad_y.transpose(1, 2, 0, 3))
    return grad_x, grad_kernel.transpose(1, 2, 0, 3)


_valid_conv.defvjp(_valid_conv_forward, _valid_conv_backward)


# -- pooling ----------------------------------------------------------------------------------
def reshape_applies(kind: str, window: Window) -> bool:
    """Whether `pool2d_reshape` reshapes for this pooling (else `pool2d`)."""
    return kind in ("max", "avg") and window.kernel == window.strides and window.unpadded


def pool2d_reshape(x: jax.Array, kind: str, window: Window | int | Sequence[int],
                   stride: int | Sequence[int] | None = None,
                   padding: Padding | None = None) -> jax.Array:
    """`pool2d` as a reshape and a max/mean for non-overlapping unpadded windows (rows or columns
    that fill no whole window are dropped, as the size formula does); `pool2d` otherwise. Takes
    what `pool2d` takes."""
    if kind not in ("max", "avg", "l2"):
        return pool2d(x, kind, window, stride, padding)
    window = pool_window("pool2d_reshape", x.shape, window, stride, padding)
    if not reshape_applies(kind, window):
        return pool2d(x, kind, window)
    (wh, ww), (out_h, out_w) = window.kernel, window.size_out
    blocks = x[:, :out_h * wh, :out_w * ww, :].reshape(x.shape[0], out_h, wh, out_w, ww,
                                                        x.shape[-1])
    return blocks.max(axis=(2, 4)) if kind == "max" else blocks.mean(axis=(2, 4))


STRATEGIES = ("auto", "step", "scan")


def pick_strategy(strategy: str, backend: str, *, batch_size: int = MICROBATCH_MIN_BATCH,
                  plans: Sequence[LayerPlan] = (), conv: str = "auto") -> str:
    """'auto' → 'scan' (steps fused by `lax.scan`) on GPU/TPU; on CPU 'scan' for batches under
    `MICROBATCH_MIN_BATCH` (where one step is short enough for its dispatch to count) when the
    convolutions' gradients are the canonical ones (`conv` 'auto' or 'canonical') and no layer
    takes the offsets form (whose gradient is XLA's own: slow inside a scan), else 'step' (one
    jitted step per batch)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    if strategy != "auto":
        return strategy
    if backend != "cpu":
        return "scan"
    offsets = conv == "auto" and any(
        p.kind == "conv" and offsets_apply(p.input_shape[-1], p.output_shape[-1]) for p in plans)
    scannable = conv in ("auto", "canonical") and not offsets
    return "scan" if batch_size < MICROBATCH_MIN_BATCH and scannable else "step"


CONV = {"lax": conv2d, "offsets": conv2d_offsets, "im2col": conv2d_im2col,
        "canonical": conv2d_canonical}
POOL = {"lax": pool2d, "reshape": pool2d_reshape}


@dataclasses.dataclass(frozen=True)
class Formulation:
    """Which program computes each layer kind, and how many micro-batches a training step's
    gradient is split into. Hashable: the compiled steps are cached on it."""

    conv: str = "lax"
    pool: str = "lax"
    microbatches: int = 1

    def __post_init__(self) -> None:
        if self.conv not in CONV or self.pool not in POOL:
            raise ValueError(f"unknown formulation {self}; conv one of {list(CONV)}, "
                             f"pool one of {list(POOL)}")

    def conv2d(self, x: jax.Array, kernel: jax.Array, bias: jax.Array,
               window: Window) -> jax.Array:
        """A conv layer's `conv2d(x, kernel, bias, window)` by this formulation's program."""
        return CONV[self.conv](x, kernel, bias, window)

    def pool2d(self, x: jax.Array, kind: str, window: Window) -> jax.Array:
        """A pool layer's `pool2d(x, kind, window)` by this formulation's program."""
        return POOL[self.pool](x, kind, window)


LAYERS = Formulation()  # the layers' own: lax convolution and reduce_window pooling


def dense_share(plans: Sequence[LayerPlan]) -> float:
    """The fraction of a forward pass's multiply-adds spent in dense (fully connected) layers."""
    total = sum(plan.macs for plan in plans)
    return sum(plan.macs for plan in plans if plan.kind == "dense") / max(total, 1)


def auto_microbatches(batch_size: int, plans: Sequence[LayerPlan]) -> int:
    """`MICROBATCH_PARTS` equal parts from a batch of `MICROBATCH_MIN_BATCH` examples up (128 →
    2×64, 1024 → 2×512), one batch below it and where dense layers do `DENSE_SHARE_LIMIT` or
    more of the multiply-adds."""
    if dense_share(plans) >= DENSE_SHARE_LIMIT or batch_size < MICROBATCH_MIN_BATCH:
        return 1
    return MICROBATCH_PARTS if batch_size % MICROBATCH_PARTS == 0 else 1


def choose(conv: str, pool: str, microbatches: int, *, plans: Sequence[LayerPlan],
           batch_size: int, backend: str, training: bool, devices: int = 1,
           scan: bool = False) -> Formulation:
    """The formulation of a training step (`training`) or an evaluation chunk.

    Args:
      conv, pool: 'auto' or a key of `CONV` / `POOL` (config.formulation.conv / .pool).
      microbatches: 0 (auto) or the number of parts of a training step's batch.
      plans: the network's layer plans. batch_size: examples per step (per evaluation chunk).
      backend: JAX's backend ('cpu', 'gpu', 'tpu'). devices: devices the batch is sharded over.
      scan: the training steps are fused by `lax.scan` (`pick_strategy`).
    'auto' on CPU: in training, offsets convolution where a layer allows it, else the canonical
    gradients when steps are scanned; reshape pooling where a layer allows it;
    `auto_microbatches` on one device. Elsewhere the layers' own forms and one batch. An explicit
    choice that no layer of the network can take is a `ConfigError`.
    """
    cpu = backend == "cpu"
    offsets_layers = [p.name for p in plans if p.kind == "conv"
                      and offsets_apply(p.input_shape[-1], p.output_shape[-1])]
    reshape_layers = [p.name for p in plans if p.kind == "pool" and p.geometry is not None
                      and reshape_applies(p.pool_type, p.geometry)]
    canonical_layers = [p.name for p in plans if p.kind == "conv" and canonical_applies(p.geometry)]
    if conv == "auto":
        conv = "lax"
        if cpu and training and offsets_layers:
            conv = "offsets"
        elif cpu and training and scan and canonical_layers:
            conv = "canonical"
    elif conv not in CONV:
        raise ConfigError("formulation.conv", conv, f"'auto' or one of {list(CONV)}")
    elif conv == "offsets" and not offsets_layers:
        raise ConfigError("formulation.conv", conv, "a network with a conv layer of one input "
                          f"channel and at most {OFFSETS_MAX_MAPS} maps (this one has none)")
    elif conv == "canonical" and not canonical_layers:
        raise ConfigError("formulation.conv", conv, "a network with a conv layer of stride 1 "
                          "and dilation 1 (this one has none)")
    if pool == "auto":
        pool = "reshape" if cpu and reshape_layers else "lax"
    elif pool not in POOL:
        raise ConfigError("formulation.pool", pool, f"'auto' or one of {list(POOL)}")
    elif pool == "reshape" and not reshape_layers:
        raise ConfigError("formulation.pool", pool, "a network with a max or avg pool layer "
                          "whose window equals its stride, unpadded (this one has none)")
    if isinstance(microbatches, bool) or not isinstance(microbatches, int) or microbatches < 0:
        raise ConfigError("formulation.microbatches", microbatches, "an integer >= 0 (0: auto)")
    if not training:
        microbatches = 1
    elif microbatches == 0:
        microbatches = auto_microbatches(batch_size, plans) if cpu and devices == 1 else 1
    elif batch_size % microbatches:
        raise ConfigError("formulation.microbatches", microbatches,
                          f"a divisor of the batch of {batch_size}")
    return Formulation(conv, pool, microbatches)

