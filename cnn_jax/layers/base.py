"""What every layer shares: its plan (shapes and costs, known before tracing) and its interface."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import jax

from cnn_jax.errors import LayerError, ShapeError
from cnn_jax.shapes import Window

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
