"""Named architectures of the course and of Nielsen's chapter 6, as lists of layer dicts.

Dicts (not objects) so that configs hold them and sweeps can change any field
(`model.layers[0].kernel`). `Network.from_layers(preset('nielsen_cp2_fc100'))` builds one.

CP(n) is Nielsen's conv-pool layer: n maps of 5×5, stride 1, no padding, then 2×2 max pooling.
The book adds the bias after pooling; with max pooling and a monotone activation that is the same
function as conv + bias → activation → pool, the order used here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

LayerDict = dict[str, Any]


def conv(features: int, kernel: int = 5, activation: str = "relu", **kw: Any) -> LayerDict:
    return {"type": "conv", "features": features, "kernel": kernel, "activation": activation, **kw}


def pool(kind: str = "max", window: int = 2, **kw: Any) -> LayerDict:
    return {"type": "pool", "pool_type": kind, "window": window, **kw}


def dense(features: int, activation: str = "relu") -> LayerDict:
    return {"type": "dense", "features": features, "activation": activation}


def dropout(rate: float) -> LayerDict:
    return {"type": "dropout", "rate": rate}


def conv_pool(features: int, activation: str) -> list[LayerDict]:
    """Nielsen's CP(n): n maps 5×5 → 2×2 max pooling."""
    return [conv(features, 5, activation), pool("max", 2)]


def logits(classes: int = 10) -> LayerDict:
    return dense(classes, "identity")


def course_3maps(classes: int = 10) -> list[LayerDict]:
    """The lecture's example: 28×28 → 3 maps 5×5 (24×24×3) → 2×2 max pool (12×12×3) → classes."""
    return [*conv_pool(3, "sigmoid"), logits(classes)]


def nielsen_fc100(classes: int = 10) -> list[LayerDict]:
    """Row 1: FC100 (sigmoid) → softmax."""
    return [dense(100, "sigmoid"), logits(classes)]


def nielsen_cp1_fc100(classes: int = 10) -> list[LayerDict]:
    """Row 2: CP(20) → FC100 → softmax, sigmoid."""
    return [*conv_pool(20, "sigmoid"), dense(100, "sigmoid"), logits(classes)]


def nielsen_cp2_fc100(classes: int = 10, activation: str = "sigmoid") -> list[LayerDict]:
    """Rows 3–5: CP(20) → CP(40) → FC100 → softmax (row 3 sigmoid, rows 4–5 ReLU)."""
    return [
        *conv_pool(20, activation), *conv_pool(40, activation), dense(100, activation),
        logits(classes),
    ]


def nielsen_cp2_fc100_relu(classes: int = 10) -> list[LayerDict]:
    return nielsen_cp2_fc100(classes, "relu")


def nielsen_cp2_fc100x2(classes: int = 10) -> list[LayerDict]:
    """Row 6: CP(20) → CP(40) → FC100 → FC100 → softmax, ReLU."""
    return [*conv_pool(20, "relu"), *conv_pool(40, "relu"), dense(100), dense(100), logits(classes)]


def nielsen_cp2_fc1000_dropout(classes: int = 10, rate: float = 0.5) -> list[LayerDict]:
    """Row 7: CP(20) → CP(40) → FC1000 → FC1000 → softmax, ReLU, dropout on each FC input."""
    return [
        *conv_pool(20, "relu"), *conv_pool(40, "relu"), dropout(rate), dense(1000), dropout(rate),
        dense(1000), dropout(rate), logits(classes),
    ]


def lenet5(classes: int = 10) -> list[LayerDict]:
    """LeNet-5 on 28×28 (padding 2 stands for the original 32×32 input); 61,706 parameters."""
    return [
        conv(6, 5, "tanh", padding=2), pool("avg", 2), conv(16, 5, "tanh"), pool("avg", 2),
        dense(120, "tanh"), dense(84, "tanh"), logits(classes),
    ]


def mnist_fast(classes: int = 10) -> list[LayerDict]:
    """configs/mnist_fast.py's network: CP(24, 5×5) → CP(32, 3×3) → FC256 (ReLU); 215,194
    parameters."""
    return [conv(24, 5), pool("max", 2), conv(32, 3), pool("max", 2), dense(256),
            logits(classes)]


ABLATION_STEPS = ("why_fc", "why_local", "why_shared", "why_pooled")


def ablation(step: str, classes: int = 10, *, maps: int = 20, kernel: int = 5, fc_units: int = 30,
             activation: str = "relu") -> list[LayerDict]:
    """The course's "why CNNs" ablation, one idea at a time, each one hidden layer → classes:
    'why_fc' `fc_units` fully connected neurons; 'why_local' `maps` maps of kernel×kernel local
    receptive fields, unshared; 'why_shared' the same maps with shared weights; 'why_pooled'
    shared weights, then 2×2 max pooling."""
    shared = conv(maps, kernel, activation)
    hidden = {
        "why_fc": [dense(fc_units, activation)],
        "why_local": [{"type": "local", "features": maps, "kernel": kernel,
                       "activation": activation}],
        "why_shared": [shared],
        "why_pooled": [shared, pool("max", 2)],
    }
    if step not in hidden:
        raise ValueError(f"unknown ablation step {step!r}; one of {ABLATION_STEPS}")
    return [*hidden[step], logits(classes)]


PRESETS: dict[str, Callable[..., list[LayerDict]]] = {
    "course_3maps": course_3maps,
    "nielsen_fc100": nielsen_fc100,
    "nielsen_cp1_fc100": nielsen_cp1_fc100,
    "nielsen_cp2_fc100": nielsen_cp2_fc100,
    "nielsen_cp2_fc100_relu": nielsen_cp2_fc100_relu,
    "nielsen_cp2_fc100x2": nielsen_cp2_fc100x2,
    "nielsen_cp2_fc1000_dropout": nielsen_cp2_fc1000_dropout,
    "lenet5": lenet5,
    "mnist_fast": mnist_fast,
    **{step: functools.partial(ablation, step) for step in ABLATION_STEPS},
}


def preset(name: str, classes: int = 10) -> list[LayerDict]:
    """The layer dicts of the preset called `name`."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name](classes)


def full_layers(name: str, classes: int = 10) -> list[LayerDict]:
    """The preset's layer dicts with every field of every layer (`complete`)."""
    return complete(preset(name, classes))


def complete(layers: list[LayerDict]) -> list[LayerDict]:
    """Layer dicts with every field of their layer type, defaults included, so that a config
    that lists them can have any field overridden from the command line
    (`--config.model.layers[0].dilation=2`). A pool's default stride is written as 'window'
    (the window's size, like None) so that it can be overridden with a number."""
    from cnn_jax.network import layer_from_dict, layer_to_dict

    return [_config_values(layer_to_dict(layer_from_dict(layer, index)))
            for index, layer in enumerate(layers)]


def _config_values(layer: LayerDict) -> LayerDict:
    """Tuples as lists, as a config file or JSON writes them; a pool's stride None as 'window'
    (see `complete`)."""
    values = {key: list(value) if isinstance(value, tuple) else value
              for key, value in layer.items()}
    if values["type"] == "pool" and values.get("stride") is None:
        values["stride"] = "window"
    return values
