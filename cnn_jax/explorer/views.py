"""What the page shows of a trained run: its kernels, the feature maps of a test digit and the
effective receptive fields, from the run's best-validation checkpoint, as compact JSON.

Arrays travel as {"shape": [...], "low": a, "high": b, "data": base64 of uint8}: value ≈ low +
(high − low)·byte/255 (kernels keep their symmetric scale, low = −high, so 0 stays white).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np

from cnn_jax.receptive_field import effective_fields

MAX_MAPS = 16  # feature maps per layer on the page
MAX_KERNELS = 32  # kernels per conv layer on the page
FIELD_IMAGES = 32  # test images averaged for the effective receptive field


def quantize(values: Any, *, symmetric: bool = False) -> dict[str, Any]:
    """`values` (any shape) as uint8 bytes in base64 with the scale to read them back."""
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if symmetric:
        limit = max(abs(low), abs(high)) or 1.0
        low, high = -limit, limit
    span = high - low if high > low else 1.0
    scaled = np.clip(np.nan_to_num((array - low) / span), 0.0, 1.0)
    data = np.round(scaled * 255).astype(np.uint8)
    return {"shape": list(array.shape), "low": low, "high": high,
            "data": base64.b64encode(data.tobytes()).decode("ascii")}


def dequantize(record: dict[str, Any]) -> np.ndarray:
    """Inverse of `quantize` (to within (high − low)/510)."""
    data = np.frombuffer(base64.b64decode(record["data"]), np.uint8).astype(np.float64)
    low, high = record["low"], record["high"]
    return (low + (high - low) * data / 255).reshape(record["shape"])


def digit_record(image: np.ndarray, label: int | None) -> dict[str, Any]:
    """A test image (H, W, C) in [0, 1] for the page: channel-mean grey levels."""
    grey = np.asarray(image, np.float64).mean(axis=-1)
    return {"label": label, "pixels": quantize(grey)}


def trained_views(run_dir: str | Path, images: np.ndarray | None) -> dict[str, Any]:
    """Kernels (every conv layer, first input channel), the feature maps of images[0] and the
    effective receptive field of each image-shaped layer over `images` (N, H, W, C; None: only
    the kernels), from the run's best-validation checkpoint (`cnn_jax.inference.load_run`)."""
    import jax

    from cnn_jax.inference import load_run

    model = load_run(run_dir)
    params = jax.device_get(model.params)
    kernels = {}
    for name, layer_params in params.items():
        kernel = np.asarray(layer_params.get("kernel"))
        if name.startswith("conv") and kernel.ndim == 4:
            kernels[name] = quantize(kernel[:, :, 0, :MAX_KERNELS], symmetric=True)
    views: dict[str, Any] = {"step": model.step, "kernels": kernels, "maps": {}, "fields": {}}
    if images is None or not len(images):
        return views
    images = np.asarray(images, np.float32)
    outputs = model.network.activations(model.params, images[:1])
    for name, value in outputs.items():
        value = np.asarray(value)[0]
        if value.ndim == 3:
            views["maps"][name] = quantize(np.moveaxis(value[:, :, :MAX_MAPS], -1, 0))
    logits = np.asarray(model.logits(images[:1]))[0]
    views["prediction"] = int(np.argmax(logits))
    heat = effective_fields(model.network, model.params, images[:FIELD_IMAGES])
    views["fields"] = {name: quantize(value) for name, value in heat.items()}
    return views
