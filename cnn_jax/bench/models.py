"""The benchmarked networks as layer dicts, and the same architecture as a PyTorch module."""

from __future__ import annotations

from typing import Any

from cnn_jax.presets import preset

NETWORKS = ("course_3maps", "nielsen_cp2_fc100_relu")
INPUT_SHAPE = (28, 28, 1)


def torch_model(layers: list[dict[str, Any]], input_shape=INPUT_SHAPE):
    """A `torch.nn.Sequential` with the architecture of `layers` (conv, pool, dense, dropout; no
    padding/stride/dilation beyond what the presets use). Initialisation is PyTorch's own: the
    benchmark measures throughput, not accuracy."""
    import torch.nn as nn

    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "identity": nn.Identity}
    height, width, channels = input_shape
    modules: list[Any] = []
    flat = None
    for spec in layers:
        kind = spec["type"]
        if kind == "conv":
            k, pad = spec.get("kernel", 5), spec.get("padding", 0)
            pad = 0 if pad == "VALID" else pad
            modules += [nn.Conv2d(channels, spec["features"], k, padding=pad),
                        acts[spec.get("activation", "relu")]()]
            height, width, channels = height + 2 * pad - k + 1, width + 2 * pad - k + 1, \
                spec["features"]
        elif kind == "pool":
            window = spec.get("window", 2)
            pool = nn.MaxPool2d if spec.get("pool_type", "max") == "max" else nn.AvgPool2d
            modules.append(pool(window))
            height, width = height // window, width // window
        elif kind == "dropout":
            modules.append(nn.Dropout(spec["rate"]))
        elif kind == "dense":
            if flat is None:
                flat = height * width * channels
                modules.append(nn.Flatten())
            modules += [nn.Linear(flat, spec["features"]),
                        acts[spec.get("activation", "relu")]()]
            flat = spec["features"]
        else:
            raise ValueError(f"no PyTorch equivalent for layer type {kind!r}")
    return nn.Sequential(*modules)


def layers_for(name: str) -> list[dict[str, Any]]:
    return preset(name)
