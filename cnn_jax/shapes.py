"""The relation between input and output size of a conv or pool layer.

    out = floor((in + pad_lo + pad_hi − dilation·(k − 1) − 1) / stride) + 1

With symmetric padding `pad_lo + pad_hi = 2·pad`, the formula of the course. Every conv, locally
connected and pool layer computes its output size here, before anything is traced or compiled, and
refuses an impossible configuration with a `ShapeError` that names the layer, the numbers and the
formula.

A layer's plan holds both axes as one `Window`, which also gives the `lax` arguments (strides,
explicit padding pairs, dilation) that `conv2d`, `local2d`, `pool2d` and every formulation take.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

from cnn_jax.errors import LayerError, ShapeError

Pairs = tuple[tuple[int, int], tuple[int, int]]  # explicit ((top, bottom), (left, right))
Padding = str | int | tuple[int, int] | Pairs
AXES = ("height", "width")


def pair(value: int | Sequence[int], what: str, layer: str) -> tuple[int, int]:
    """`5 -> (5, 5)`, `(3, 5) -> (3, 5)`; refuses anything else."""
    if isinstance(value, bool):
        raise LayerError(f"layer '{layer}': {what} must be an int or a pair of ints, got "
                         f"{value!r}", what)
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, Sequence) and len(value) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return (int(value[0]), int(value[1]))
    raise LayerError(f"layer '{layer}': {what} must be an int or a pair of ints, got {value!r}",
                     what)


@dataclasses.dataclass(frozen=True)
class AxisGeometry:
    """One spatial axis of a sliding-window layer, with its output size."""

    axis: str
    size_in: int
    kernel: int
    stride: int
    pad_lo: int
    pad_hi: int
    dilation: int

    @property
    def effective_kernel(self) -> int:
        """Span of the dilated window: dilation·(k − 1) + 1."""
        return self.dilation * (self.kernel - 1) + 1

    @property
    def size_out(self) -> int:
        """The formula's value (below 1 for an impossible layer, so that messages stay true)."""
        span = self.size_in + self.pad_lo + self.pad_hi - self.effective_kernel
        return span // self.stride + 1

    def formula(self) -> str:
        """The size formula with this axis' numbers, e.g. `(28 + 2·0 − 1·(5−1) − 1)/1 + 1 = 24`."""
        pad = (
            f"2·{self.pad_lo}" if self.pad_lo == self.pad_hi else f"{self.pad_lo}+{self.pad_hi}"
        )
        numerator = f"{self.size_in} + {pad} − {self.dilation}·({self.kernel}−1) − 1"
        return f"floor(({numerator})/{self.stride}) + 1 = {self.size_out}"


class Window(NamedTuple):
    """Both spatial axes of a sliding window, checked by the size formula: `rows, cols = window`.

    Its properties are the arguments of `lax.conv_general_dilated` and `lax.reduce_window`, so
    the geometry is turned into `lax` arguments here only.
    """

    rows: AxisGeometry
    cols: AxisGeometry

    @property
    def kernel(self) -> tuple[int, int]:
        """(kh, kw): the kernel (pool: window) size."""
        return self.rows.kernel, self.cols.kernel

    @property
    def strides(self) -> tuple[int, int]:
        return self.rows.stride, self.cols.stride

    @property
    def padding(self) -> Pairs:
        """Explicit ((top, bottom), (left, right)) padding."""
        return (self.rows.pad_lo, self.rows.pad_hi), (self.cols.pad_lo, self.cols.pad_hi)

    @property
    def dilation(self) -> tuple[int, int]:
        return self.rows.dilation, self.cols.dilation

    @property
    def size_out(self) -> tuple[int, int]:
        """(out_h, out_w) by the size formula."""
        return self.rows.size_out, self.cols.size_out

    @property
    def unpadded(self) -> bool:
        return all(lo == hi == 0 for lo, hi in self.padding)


def resolve_padding(
    padding: Padding, size_in: int, kernel: int, stride: int, dilation: int, axis_index: int,
    layer: str,
) -> tuple[int, int]:
    """Explicit (lo, hi) padding of one axis for 'VALID', 'SAME', an int, a pair or pairs."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return (0, 0)
        if mode == "SAME":
            out = -(-size_in // stride)
            total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size_in, 0)
            return (total // 2, total - total // 2)
        raise LayerError(
            f"layer '{layer}': padding must be 'VALID', 'SAME', an int or pairs, got {padding!r}",
            "padding")
    if isinstance(padding, int) and not isinstance(padding, bool):
        return (padding, padding)
    if isinstance(padding, Sequence) and len(padding) == 2:
        item = padding[axis_index]
        if isinstance(item, int) and not isinstance(item, bool):
            return (item, item)
        if isinstance(item, Sequence) and len(item) == 2:
            return (int(item[0]), int(item[1]))
    raise LayerError(
        f"layer '{layer}': padding must be 'VALID', 'SAME', an int or pairs, got {padding!r}",
        "padding")


def window_geometry(
    layer: str, kind: str, spatial_in: tuple[int, int], kernel: int | Sequence[int],
    stride: int | Sequence[int], padding: Padding, dilation: int | Sequence[int] = 1,
) -> Window:
    """Geometry of both spatial axes of a sliding-window layer; raises `ShapeError` if impossible.

    Args:
      layer: the layer's name, used in error messages.
      kind: 'conv', 'local' or 'pool', used in error messages ('kernel' or 'window').
      spatial_in: (height, width) of the input.
    """
    what = "window" if kind == "pool" else "kernel"
    kernels = pair(kernel, what, layer)
    strides = pair(stride, "stride", layer)
    dilations = pair(dilation, "dilation", layer)
    axes = []
    for i, name in enumerate(AXES):
        k, s, d, size_in = kernels[i], strides[i], dilations[i], spatial_in[i]
        for field, label, value in ((what, f"{what} size", k), ("stride", "stride", s),
                                    ("dilation", "dilation", d)):
            if value < 1:
                raise LayerError(f"layer '{layer}' ({kind}): {label} must be >= 1, got {value}",
                                 field)
        lo, hi = resolve_padding(padding, size_in, k, s, d, i, layer)
        if lo < 0 or hi < 0:
            raise LayerError(
                f"layer '{layer}' ({kind}): padding must be >= 0, got ({lo}, {hi}) along {name}",
                "padding")
        geometry = AxisGeometry(name, size_in, k, s, lo, hi, d)
        if geometry.size_out < 1:
            raise ShapeError(
                f"layer '{layer}' ({kind}): {what} {k} (dilated span {geometry.effective_kernel})"
                f" is larger than the padded input {size_in + lo + hi} along {name}: "
                f"out = {geometry.formula()}, but an output needs at least 1"
            )
        axes.append(geometry)
    return Window(*axes)


def pool_geometry(
    layer: str, spatial_in: tuple[int, int], window: int | Sequence[int],
    stride: int | Sequence[int], padding: Padding,
) -> Window:
    """`window_geometry` of a pool layer that also refuses a window lying entirely in the padding.

    Such a window pools no input at all: its max is −inf, its average 0/0. Along an axis the first
    window is all padding iff pad_lo ≥ window, the last iff (out − 1)·stride ≥ pad_lo + in;
    padding of at most window − 1 on each side never gives one.
    """
    axes = window_geometry(layer, "pool", spatial_in, window, stride, padding)
    for g in axes:
        last_start = (g.size_out - 1) * g.stride
        if g.pad_lo >= g.kernel:
            which, start = "first", 0
        elif last_start >= g.pad_lo + g.size_in:
            which, start = "last", last_start
        else:
            continue
        raise ShapeError(
            f"layer '{layer}' (pool): window {g.kernel} with padding ({g.pad_lo}, {g.pad_hi}) "
            f"along {g.axis}: out = {g.formula()}, but the {which} window (padded positions "
            f"{start}..{start + g.kernel - 1}; the input is {g.pad_lo}..{g.pad_lo + g.size_in - 1})"
            f" lies entirely in the padding. Every window must overlap the input: pad_lo ≤ "
            f"window − 1 = {g.kernel - 1} and (out − 1)·stride < pad_lo + in = "
            f"{g.pad_lo + g.size_in} (padding at most window − 1 on each side always is)"
        )
    return axes


def image_shape(function: str, kind: str, x_shape: Sequence[int]) -> tuple[int, int, int]:
    """(height, width, channels) of an argument x of shape (batch, height, width, channels)."""
    if len(x_shape) != 4:
        raise ShapeError(f"layer '{function}' ({kind}): x must be (batch, height, width, channels),"
                         f" got shape {tuple(x_shape)}")
    return int(x_shape[1]), int(x_shape[2]), int(x_shape[3])


def kernel_geometry(
    function: str, kind: str, x_shape: Sequence[int], kernel_shape: Sequence[int],
    stride: int | Sequence[int], padding: Padding, dilation: int | Sequence[int] = 1,
) -> Window:
    """The geometry of a direct call of a conv ('conv') or locally connected ('local') function,
    checked like the layers' plans; a `ShapeError` for impossible shapes.

    Args:
      x_shape: (batch, height, width, in_channels).
      kernel_shape: conv (kh, kw, in_channels, maps); local (out_h, out_w, kh, kw, in_channels,
        maps).
    """
    height, width, channels = image_shape(function, kind, x_shape)
    layout = ("kh", "kw", "in_channels", "maps")
    if kind == "local":
        layout = ("out_h", "out_w", *layout)
    if len(kernel_shape) != len(layout):
        raise ShapeError(f"layer '{function}' ({kind}): kernel must be ({', '.join(layout)}), "
                         f"got shape {tuple(kernel_shape)}")
    kh, kw, in_channels, _ = kernel_shape[-4:]
    if in_channels != channels:
        raise ShapeError(
            f"layer '{function}' ({kind}): the kernel {tuple(kernel_shape)} has in_channels = "
            f"{in_channels}, but x {tuple(x_shape)} has {channels} channels"
        )
    rows, cols = window_geometry(function, kind, (height, width), (int(kh), int(kw)), stride,
                                 padding, dilation)
    if kind == "local" and tuple(kernel_shape[:2]) != (rows.size_out, cols.size_out):
        raise ShapeError(
            f"layer '{function}' (local): the kernel {tuple(kernel_shape)} has (out_h, out_w) = "
            f"{tuple(kernel_shape[:2])}, but the output is {rows.size_out}×{cols.size_out}: out = "
            f"{rows.formula()} (height), {cols.formula()} (width)"
        )
    return Window(rows, cols)


def call_window(
    function: str, kind: str, x_shape: Sequence[int], kernel_shape: Sequence[int],
    window: Window | None = None, *, stride: int | Sequence[int] | None = None,
    padding: Padding | None = None, dilation: int | Sequence[int] | None = None,
) -> Window:
    """The window of a call of a conv ('conv') or locally connected ('local') function, checked
    against its x and kernel shapes (`kernel_geometry`): a layer plan's `window`, or the one the
    keywords give (defaults: stride 1, no padding, dilation 1), never both."""
    if window is None:
        return kernel_geometry(function, kind, x_shape, kernel_shape,
                               1 if stride is None else stride, 0 if padding is None else padding,
                               1 if dilation is None else dilation)
    if (stride, padding, dilation) != (None, None, None):
        raise LayerError(f"layer '{function}' ({kind}): give a window or stride/padding/"
                         "dilation, not both", "window")
    checked = kernel_geometry(function, kind, x_shape, kernel_shape, window.strides,
                              window.padding, window.dilation)
    return _same_window(function, kind, window, checked)


def _same_window(function: str, kind: str, window: Window, checked: Window) -> Window:
    """`window` if it is the one the call's own shapes give (`checked`), else a `ShapeError`."""
    if checked != window:
        raise ShapeError(
            f"layer '{function}' ({kind}): the window is for a {window.rows.size_in}×"
            f"{window.cols.size_in} input and a {window.kernel[0]}×{window.kernel[1]} "
            f"{'window' if kind == 'pool' else 'kernel'}, but this call has a "
            f"{checked.rows.size_in}×{checked.cols.size_in} input and a {checked.kernel[0]}×"
            f"{checked.kernel[1]} one")
    return window


def pool_window(
    function: str, x_shape: Sequence[int], window: Window | int | Sequence[int],
    stride: int | Sequence[int] | None = None, padding: Padding | None = None,
) -> Window:
    """The window of a call of a pool function, checked against x's shape (`pool_geometry`): a
    layer plan's `Window`, or one of `window` size (stride: the window's, padding: none unless
    given)."""
    height, width, _ = image_shape(function, "pool", x_shape)
    if not isinstance(window, Window):
        stride = window if stride is None else stride
        return pool_geometry(function, (height, width), window, stride,
                             0 if padding is None else padding)
    if (stride, padding) != (None, None):
        raise LayerError(f"layer '{function}' (pool): give a Window or stride/padding, not both",
                         "window")
    checked = pool_geometry(function, (height, width), window.kernel, window.strides,
                            window.padding)
    return _same_window(function, "pool", window, checked)
