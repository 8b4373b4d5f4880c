"""PyTorch twins of the benchmarked networks. This module imports nothing of cnn_jax, so a
PyTorch worker that loads it by path (`cnn_jax.bench.tta_worker`) never imports JAX: its time
from process start is PyTorch's own."""

from __future__ import annotations

from typing import Any


def _out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def torch_model(layers: list[dict[str, Any]], input_shape=(28, 28, 1)):
    """A `torch.nn.Sequential` with the architecture of `layers` (conv with int kernel, stride
    and symmetric padding, max/avg pooling, dense, dropout). Initialisation is PyTorch's own."""
    import torch.nn as nn

    acts = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "identity": nn.Identity}
    height, width, channels = input_shape
    modules: list[Any] = []
    flat = None
    for spec in layers:
        kind = spec["type"]
        if kind == "conv":
            k, stride, pad = spec.get("kernel", 5), spec.get("stride", 1), spec.get("padding", 0)
            pad = 0 if pad == "VALID" else pad
            if not all(isinstance(v, int) for v in (k, stride, pad)) or spec.get(
                    "dilation", 1) != 1:
                raise ValueError(f"no PyTorch twin for conv layer {spec}")
            modules += [nn.Conv2d(channels, spec["features"], k, stride=stride, padding=pad),
                        acts[spec.get("activation", "relu")]()]
            height, width = _out(height, k, stride, pad), _out(width, k, stride, pad)
            channels = spec["features"]
        elif kind == "pool":
            window = spec.get("window", 2)
            stride = spec.get("stride") or window
            stride = window if stride == "window" else stride
            if spec.get("pool_type", "max") == "none":
                continue
            pool = nn.MaxPool2d if spec.get("pool_type", "max") == "max" else nn.AvgPool2d
            modules.append(pool(window, stride))
            height, width = _out(height, window, stride, 0), _out(width, window, stride, 0)
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


def examples_net():
    """pytorch/examples mnist/main.py's Net: conv 32@3×3 → conv 64@3×3 → 2×2 max pool → dropout
    0.25 → FC128 → dropout 0.5 → 10, log-softmax output (trained with NLL loss)."""
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 10), nn.LogSoftmax(dim=1))
