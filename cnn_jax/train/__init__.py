"""Training and evaluation: `train_and_evaluate(config, workdir) -> results`.

The names below are imported on first use, so that `cnn_jax.train.devices` (or a script that
fails on a bad config) does not pay for importing Orbax, TFDS and the compiled steps.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Diverged": "cnn_jax.train.training_loop",
    "pick_strategy": "cnn_jax.train.loop",
    "train_and_evaluate": "cnn_jax.train.loop",
    "WorkdirError": "cnn_jax.train.workdir",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'cnn_jax.train' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
