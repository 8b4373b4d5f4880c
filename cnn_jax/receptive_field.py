"""The receptive field of one unit: theoretical (by formula) and effective (by gradient).

Theoretical, per axis, through every sliding-window layer (summary.py's recursion, plus where
the field starts on the input):

    size  ← size + dilation·(k − 1)·jump
    start ← start − pad_lo·jump          (input coordinate of the first pixel seen by unit 0)
    jump  ← jump·stride

so unit i of a layer sees input pixels start + i·jump … start + i·jump + size − 1 (positions
outside 0 … in − 1 are padding). Effective (Luo et al., 2016): the mean over test images of
|∂ unit / ∂ input| for the unit at the centre of the layer's output, one `jax.grad`; its support
lies inside the theoretical field, and its mass is usually concentrated near the middle.

    fields = theoretical_fields(network, (28, 28, 1))      # {'conv1': FieldGeometry, ...}
    heat = effective_field(network, params, images, "conv2")  # (28, 28), float32
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from cnn_jax.errors import ShapeError
from cnn_jax.layers.base import Shape
from cnn_jax.network import Network, Params


@dataclasses.dataclass(frozen=True)
class FieldGeometry:
    """The theoretical receptive field of the units of one image-shaped layer, per axis (h, w)."""

    layer: str
    output_shape: Shape  # (out_h, out_w, maps)
    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[int, int]

    def window(self, unit: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
        """((first row, last row), (first col, last col)) on the input of unit (i, j), inclusive,
        not clipped to the image (negative or ≥ size: padding)."""
        return tuple(  # type: ignore[return-value]
            (self.start[a] + unit[a] * self.jump[a],
             self.start[a] + unit[a] * self.jump[a] + self.size[a] - 1) for a in range(2))


def central_unit(output_shape: Shape) -> tuple[int, int]:
    """(i, j) = ((out_h − 1) // 2, (out_w − 1) // 2): the unit at the centre of a map."""
    return (output_shape[0] - 1) // 2, (output_shape[1] - 1) // 2


def theoretical_fields(network: Network, input_shape: Shape) -> dict[str, FieldGeometry]:
    """The field of every layer whose output is an image (H, W, C), in order; the layers after
    the first dense layer see the whole image and are left out."""
    size, jump, start = [1, 1], [1, 1], [0, 0]
    fields = {}
    for plan in network.plan(input_shape):
        if len(plan.output_shape) != 3:
            break
        for a, axis in enumerate(plan.geometry or ()):
            size[a] += (axis.effective_kernel - 1) * jump[a]
            start[a] -= axis.pad_lo * jump[a]
            jump[a] *= axis.stride
        fields[plan.name] = FieldGeometry(plan.name, plan.output_shape, tuple(size),
                                          tuple(jump), tuple(start))
    return fields


@functools.partial(jax.jit, static_argnames=("network", "layer", "unit", "channel"))
def _mean_abs_gradient(network: Network, params: Params, images: jax.Array, layer: str,
                       unit: tuple[int, int], channel: int | None) -> jax.Array:
    def value(x: jax.Array) -> jax.Array:
        y = network.activations(params, x)[layer][:, unit[0], unit[1], :]  # (N, maps)
        return jnp.sum(y if channel is None else y[:, channel])

    # Each image's unit depends on that image only, so the gradient of the sum over the batch
    # holds every image's own gradient.
    grads = jax.grad(value)(images)  # (N, H, W, C)
    return jnp.mean(jnp.sum(jnp.abs(grads), axis=-1), axis=0)


def effective_field(
    network: Network, params: Params, images: jax.Array | np.ndarray, layer: str, *,
    unit: tuple[int, int] | None = None, channel: int | None = None,
) -> np.ndarray:
    """Mean over `images` (N, H, W, C) of |∂ unit / ∂ input|, summed over input channels: (H, W).

    The unit is position `unit` (default: `central_unit`) of layer `layer`'s output, summed over
    its maps (`channel=None`) or of map `channel`. Evaluation mode (no dropout).
    Raises:
      ShapeError: `layer` is not an image-shaped layer of the network, or `unit` is outside it.
    """
    images = jnp.asarray(images, jnp.float32)
    if images.ndim != 4:
        raise ShapeError(f"images must be (N, height, width, channels), got {images.shape}")
    fields = theoretical_fields(network, tuple(images.shape[1:]))
    if layer not in fields:
        raise ShapeError(f"layer {layer!r} has no image-shaped output; choose one of "
                         f"{list(fields)}")
    shape = fields[layer].output_shape
    unit = central_unit(shape) if unit is None else tuple(int(u) for u in unit)
    if not (0 <= unit[0] < shape[0] and 0 <= unit[1] < shape[1]):
        raise ShapeError(f"unit {unit} lies outside {layer}'s output {shape[0]}×{shape[1]}")
    if channel is not None and not 0 <= channel < shape[2]:
        raise ShapeError(f"channel {channel} is outside {layer}'s {shape[2]} maps")
    return np.asarray(_mean_abs_gradient(network, params, images, layer, unit, channel))


@functools.partial(jax.jit, static_argnames=("network", "units"))
def _all_mean_abs_gradients(network: Network, params: Params, images: jax.Array,
                            units: tuple[tuple[str, tuple[int, int]], ...]) -> jax.Array:
    def values(x: jax.Array) -> jax.Array:
        outputs = network.activations(params, x)
        return jnp.stack([jnp.sum(outputs[name][:, i, j, :]) for name, (i, j) in units])

    grads = jax.jacrev(values)(images)  # (layers, N, H, W, C)
    return jnp.mean(jnp.sum(jnp.abs(grads), axis=-1), axis=1)


def effective_fields(network: Network, params: Params, images: jax.Array | np.ndarray
                     ) -> dict[str, np.ndarray]:
    """`effective_field` of the central unit (maps summed) of every image-shaped layer, in one
    compiled program: {layer: (H, W)}."""
    images = jnp.asarray(images, jnp.float32)
    fields = theoretical_fields(network, tuple(images.shape[1:]))
    units = tuple((name, central_unit(f.output_shape)) for name, f in fields.items())
    heat = np.asarray(_all_mean_abs_gradients(network, params, images, units))
    return {name: heat[index] for index, (name, _) in enumerate(units)}
