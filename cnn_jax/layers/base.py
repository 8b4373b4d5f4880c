"""What every layer shares: its plan (shapes and costs, known before tracing) and its interface."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import jax

from cnn_jax.errors import LayerError, ShapeError
from cnn_jax.shapes import AxisGeometry

Shape = tuple[int, ...]
Params = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class LayerPlan:
    """Shapes and costs of one layer for one input shape (no batch axis), computed by formula."""

    name: str
    kind: str
    input_shape: Shape
    output_shape: Shape
    params: int
    macs: int
    geometry: tuple[AxisGeometry, AxisGeometry] | None = None
    activation: str = ""
    detail: str = ""
    pool_type: str = ""  # pool layers: 'max', 'avg', 'l2' or 'none'


class Formulation(Protocol):
    """How conv and pool layers are computed (`cnn_jax.layers.formulations`); None: the layers' own
    `conv2d` and `pool2d`. Same functions, other XLA programs."""

    def conv2d(self, x: jax.Array, kernel: jax.Array, bias: jax.Array, **window) -> jax.Array: ...

    def pool2d(self, x: jax.Array, kind: str, window: tuple[int, int], stride: tuple[int, int],
               padding: tuple[tuple[int, int], tuple[int, int]]) -> jax.Array: ...


class Layer(Protocol):
    """A layer spec: hyper-parameters only; the parameters live in a separate pytree."""

    kind: str

    def plan(self, name: str, input_shape: Shape) -> LayerPlan: ...

    def init(self, key: jax.Array, plan: LayerPlan, scheme: str, pool_area: int) -> Params: ...

    def apply(
        self, params: Params, x: jax.Array, plan: LayerPlan, *, train: bool, key: jax.Array | None,
        formulation: Formulation | None = None,
    ) -> jax.Array: ...


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


def window_args(plan: LayerPlan) -> dict[str, tuple]:
    """The `lax` arguments of a sliding-window layer's plan: stride, explicit padding, dilation."""
    rows, cols = plan.geometry
    return {
        "stride": (rows.stride, cols.stride),
        "padding": ((rows.pad_lo, rows.pad_hi), (cols.pad_lo, cols.pad_hi)),
        "dilation": (rows.dilation, cols.dilation),
    }
