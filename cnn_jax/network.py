"""A network is a sequence of layer specs; its parameters are a pytree `{layer_name: {...}}`.

    net = Network.from_layers([Conv(20, 5), Pool("max", 2), Dense(100), Dense(10, "identity")])
    params = net.init(jax.random.key(0), (28, 28, 1))        # {'conv1': {'kernel', 'bias'}, ...}
    logits = net.apply(params, images)                          # images (B, 28, 28, 1) → (B, 10)

Every shape is planned by formula first (`net.plan(input_shape)`), so an impossible configuration
is refused before anything is traced or compiled; the traced shapes are checked against the plan.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from cnn_jax.errors import LayerError, ShapeError
from cnn_jax.initializers import KERNEL_SCHEMES
from cnn_jax.layers import Conv, Dense, Dropout, Layer, LayerPlan, LocallyConnected, Pool
from cnn_jax.layers.base import Params, Shape
from cnn_jax.layers.formulations import Formulation

LAYER_TYPES: dict[str, type] = {
    "conv": Conv, "local": LocallyConnected, "pool": Pool, "dense": Dense, "dropout": Dropout,
}


def layer_from_dict(spec: Mapping[str, Any], index: int = 0) -> Layer:
    """`{'type': 'conv', 'features': 20, 'kernel': 5}` → `Conv(20, 5)`; clear errors otherwise."""
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in LAYER_TYPES:
        raise LayerError(
            f"layer {index}: unknown layer type {kind!r}; choose one of {sorted(LAYER_TYPES)}",
            "type")
    cls = LAYER_TYPES[kind]
    allowed = [field.name for field in dataclasses.fields(cls)]
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise LayerError(f"layer {index} ({kind}): unknown keys {unknown}; allowed: {allowed}",
                         unknown[0])
    spec = {key: _frozen(value) for key, value in spec.items()}
    try:
        return cls(**spec)
    except TypeError as error:
        raise LayerError(f"layer {index} ({kind}): {error}") from None


def _frozen(value: Any) -> Any:
    """Lists (from JSON or config files) become tuples, so that a spec stays hashable."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return value


def layer_to_dict(layer: Layer) -> dict[str, Any]:
    """Inverse of `layer_from_dict`."""
    return {"type": layer.kind, **dataclasses.asdict(layer)}


@dataclasses.dataclass(frozen=True)
class Network:
    """An immutable, hashable description of a feed-forward network (usable as a static arg)."""

    layers: tuple[Layer, ...]
    init_scheme: str = "lecun_normal"

    @classmethod
    def from_layers(cls, layers: Sequence[Layer | Mapping[str, Any]], **kwargs: Any) -> Network:
        built = tuple(
            layer if hasattr(layer, "plan") else layer_from_dict(layer, i)
            for i, layer in enumerate(layers)
        )
        return cls(built, **kwargs)

    @property
    def names(self) -> tuple[str, ...]:
        """Readable layer names: conv1, pool1, conv2, …, dense1, dense2."""
        counts: dict[str, int] = {}
        names = []
        for layer in self.layers:
            counts[layer.kind] = counts.get(layer.kind, 0) + 1
            names.append(f"{layer.kind}{counts[layer.kind]}")
        return tuple(names)

    def plan(self, input_shape: Shape) -> tuple[LayerPlan, ...]:
        """Per-layer shapes and costs for one input (height, width, channels), by formula."""
        if not self.layers:
            raise LayerError("the network has no layers")
        if self.init_scheme not in KERNEL_SCHEMES:
            raise LayerError(
                f"unknown init scheme {self.init_scheme!r}; choose one of {list(KERNEL_SCHEMES)}",
                "init")
        shape = self.check_input_shape(input_shape)
        plans = []
        for name, layer in zip(self.names, self.layers, strict=True):
            plans.append(layer.plan(name, shape))
            shape = plans[-1].output_shape
        return tuple(plans)

    @staticmethod
    def check_input_shape(input_shape: Shape) -> Shape:
        """(height, width, channels) with sizes >= 1, as ints; a `ShapeError` otherwise."""
        try:
            shape = tuple(operator.index(d) for d in input_shape)
        except TypeError:
            shape = ()
        if len(shape) != 3 or min(shape) < 1:
            raise ShapeError(f"input shape must be (height, width, channels) with integer sizes "
                             f">= 1, got {tuple(input_shape)}")
        return shape

    def output_shape(self, input_shape: Shape) -> Shape:
        return self.plan(input_shape)[-1].output_shape

    def init(self, key: jax.Array, input_shape: Shape) -> Params:
        """Parameters for inputs of `input_shape` (height, width, channels); float32."""
        plans = self.plan(input_shape)
        params: Params = {}
        keys = jax.random.split(key, len(self.layers))
        for i, (layer, plan) in enumerate(zip(self.layers, plans, strict=True)):
            following = plans[i + 1] if i + 1 < len(plans) else None
            pool_area = 1
            if following is not None and following.geometry and following.kind == "pool":
                pool_area = following.geometry[0].kernel * following.geometry[1].kernel
            layer_params = layer.init(keys[i], plan, self.init_scheme, pool_area)
            if layer_params:
                params[plan.name] = layer_params
        return params


    def apply(
        self, params: Params, x: jax.Array, *, train: bool = False, key: jax.Array | None = None,
        formulation: Formulation | None = None, every_layer: bool = False,
    ) -> jax.Array | dict[str, jax.Array]:
        """Logits (batch, classes) for images x (batch, height, width, channels); with
        `every_layer`, {layer name: its output} for every layer instead.

        Each layer's traced output shape is checked against its plan (the size formula).
        key (training with dropout): one PRNG key, or one per example, shape (batch,)
        (`cnn_jax.layers.dropout.example_keys`), which makes the masks independent of how the
        batch is split. formulation: how conv and pool layers are computed
        (`cnn_jax.layers.formulations`); None is the layers' own `lax` programs.
        """
        if x.ndim != 4:
            raise ShapeError(
                f"input must be a batch of images (batch, height, width, channels), got shape "
                f"{tuple(x.shape)}"
            )
        plans = self.plan(x.shape[1:])
        self._check_params(params, plans)
        outputs = {}
        for i, (layer, plan) in enumerate(zip(self.layers, plans, strict=True)):
            layer_key = None if key is None else _fold_in(key, i)
            x = layer.apply(params.get(plan.name, {}), x, plan, train=train, key=layer_key,
                            formulation=formulation)
            if tuple(x.shape[1:]) != plan.output_shape:
                raise AssertionError(
                    f"layer '{plan.name}': traced shape {tuple(x.shape[1:])} differs from the "
                    f"formula's {plan.output_shape}"
                )
            outputs[plan.name] = x
        return outputs if every_layer else x

    def activations(self, params: Params, x: jax.Array) -> dict[str, jax.Array]:
        """Every layer's output (evaluation mode), e.g. the feature maps of each conv layer."""
        return self.apply(params, x, every_layer=True)

    def _check_params(self, params: Params, plans: Sequence[LayerPlan]) -> None:
        expected = jax.eval_shape(lambda: self.init(jax.random.key(0), plans[0].input_shape))
        for name, shapes in expected.items():
            given = params.get(name)
            if given is None or set(given) != set(shapes):
                raise ShapeError(
                    f"layer '{name}': parameters {sorted(given or {})} do not match the network "
                    f"(expects {sorted(shapes)})"
                )
            for leaf, spec in shapes.items():
                if tuple(given[leaf].shape) != tuple(spec.shape):
                    raise ShapeError(
                        f"layer '{name}': parameter '{leaf}' has shape {tuple(given[leaf].shape)}"
                        f" but inputs of shape {plans[0].input_shape} need {tuple(spec.shape)}"
                    )


def count_params(params: Params) -> int:
    """Number of scalars in a parameter pytree."""
    return sum(int(jnp.size(leaf)) for leaf in jax.tree_util.tree_leaves(params))


def _fold_in(key: jax.Array, data: int) -> jax.Array:
    """`jax.random.fold_in` for one key or a batch of keys."""
    if key.ndim == 0:
        return jax.random.fold_in(key, data)
    return jax.vmap(jax.random.fold_in, in_axes=(0, None))(key, data)
