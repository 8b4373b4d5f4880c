"""What every layer shares: its plan (shapes and costs, known before tracing) and its interface."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import jax

from cnn_jax.activations import get_activation
from cnn_jax.errors import LayerError, ShapeError
from cnn_jax.initializers import init_bias, init_kernel
from cnn_jax.shapes import Padding, Window, window_geometry

Shape = tuple[int, ...]
LayerParams = dict[str, jax.Array]  # one layer's: {'kernel': ..., 'bias': ...} or {}
Params = dict[str, LayerParams]  # a network's: one entry per layer name


@dataclasses.dataclass(frozen=True)
class LayerPlan:
    """Shapes and costs of one layer for one input shape (no batch axis), computed by formula."""

    name: str
    kind: str
    input_shape: Shape
    output_shape: Shape
    params: int
    macs: int
    geometry: Window | None = None  # conv, local and pool layers
    activation: str = ""
    detail: str = ""
    pool_type: str = ""  # pool layers: 'max', 'avg', 'l2' or 'none'


class Layer(Protocol):
    """A layer spec: hyper-parameters only; the parameters live in a separate pytree."""

    kind: str

    def plan(self, name: str, input_shape: Shape) -> LayerPlan: ...

    def init(self, key: jax.Array, plan: LayerPlan, scheme: str, pool_area: int) -> LayerParams:
        ...

    def apply(
        self, params: LayerParams, x: jax.Array, plan: LayerPlan, *, train: bool,
        key: jax.Array | None, formulation: Any = None,
    ) -> jax.Array:
        """formulation: a `cnn_jax.layers.formulations.Formulation`, whose `conv2d` and `pool2d`
        compute conv and pool layers (the same functions, other XLA programs); None: the layers'
        own. (Not annotated with that class: it builds on the layers' functions, so the layers
        cannot import it without an import circle.)"""
        ...


def spatial_input(name: str, kind: str, input_shape: Shape) -> tuple[int, int, int]:
    """(height, width, channels) of an image-shaped input; a `ShapeError` for any other rank."""
    if len(input_shape) != 3:
        raise ShapeError(
            f"layer '{name}' ({kind}) needs an image input (height, width, channels), got shape "
            f"{tuple(input_shape)}: a {kind} layer cannot follow a dense layer"
        )
    height, width, channels = input_shape
    return int(height), int(width), int(channels)


def positive_int(name: str, field: str, value: Any) -> int:
    """`value` if it is an int >= 1, else a `LayerError` naming the layer and `field`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LayerError(f"layer '{name}': {field} must be an int >= 1, got {value!r}", field)
    return value


@dataclasses.dataclass(frozen=True)
class KernelLayer:
    """The fields of the layers with a kernel over a sliding window (`Conv`, `LocallyConnected`):
    `features` maps of `kernel` size, moved by `stride` over the `padding`ed input."""

    features: int
    kernel: int | tuple[int, int] = 5
    stride: int | tuple[int, int] = 1
    padding: Padding = "VALID"
    dilation: int | tuple[int, int] = 1
    activation: str = "relu"
    kind = "kernel"
    shared = True  # one kernel per map at every position (conv), else one per position (local)

    def plan(self, name: str, input_shape: Shape) -> LayerPlan:
        """Every field checked against an input (height, width, channels) (a `LayerError` or
        `ShapeError` names the layer); one kernel per map (`shared`) or per map and position."""
        height, width, channels = spatial_input(name, self.kind, input_shape)
        maps = positive_int(name, "features", self.features)
        get_activation(self.activation, name)
        window = window_geometry(name, self.kind, (height, width), self.kernel, self.stride,
                                 self.padding, self.dilation)
        (out_h, out_w), (kh, kw) = window.size_out, window.kernel
        kernels = 1 if self.shared else out_h * out_w
        return LayerPlan(
            name=name, kind=self.kind, input_shape=(height, width, channels),
            output_shape=(out_h, out_w, maps), params=kernels * (kh * kw * channels + 1) * maps,
            macs=out_h * out_w * maps * kh * kw * channels, geometry=window,
            activation=self.activation,
            detail=f"{maps} maps {kh}×{kw}, {'shared' if self.shared else 'unshared'}",
        )

    def init(self, key: jax.Array, plan: LayerPlan, scheme: str, pool_area: int = 1) -> LayerParams:
        """kernel: (kh, kw, in_channels, maps), shared; unshared, (out_h, out_w, kh, kw,
        in_channels, maps). bias: (maps,), shared; unshared, (out_h, out_w, maps)."""
        (kh, kw), maps = plan.geometry.kernel, plan.output_shape[-1]
        positions = () if self.shared else tuple(plan.output_shape[:2])
        kernel_key, bias_key = jax.random.split(key)
        return {
            "kernel": init_kernel(
                scheme, kernel_key, (*positions, kh, kw, plan.input_shape[-1], maps),
                batch_axis=tuple(range(len(positions))),
                nielsen_fan_out=max(1, maps * kh * kw // pool_area),
            ),
            "bias": init_bias(scheme, bias_key, (*positions, maps)),
        }


class ParameterFree:
    """`init` of the layers without parameters (pooling, dropout)."""

    def init(self, key: jax.Array, plan: LayerPlan, scheme: str, pool_area: int = 1) -> LayerParams:
        return {}
