"""The benchmarked networks as layer dicts (their PyTorch twins: `cnn_jax.bench.torch_nets`)."""

from __future__ import annotations

from typing import Any

from cnn_jax.bench.torch_nets import torch_model  # noqa: F401 (re-exported)
from cnn_jax.presets import preset

NETWORKS = ("course_3maps", "nielsen_cp2_fc100_relu")
INPUT_SHAPE = (28, 28, 1)


def layers_for(name: str) -> list[dict[str, Any]]:
    return preset(name)
