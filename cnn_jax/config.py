"""Experiment configs: the defaults every config starts from, and validation before any work.

A config is an `ml_collections.ConfigDict` (see `configs/default.py`). `validate_config` checks
every key, type and value, and the network's shapes, before any data is loaded or anything is
compiled; a problem raises `ConfigError` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import ml_collections

from cnn_jax.activations import ACTIVATIONS
from cnn_jax.initializers import KERNEL_SCHEMES
from cnn_jax.layers import POOL_TYPES
from cnn_jax.losses import LOSSES
from cnn_jax.network import Network
from cnn_jax.presets import PRESETS, preset
from cnn_jax.shapes import ShapeError

OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "cosine", "step")
STRATEGIES = ("auto", "step", "scan")
DATASETS = (
    "mnist_5k", "idx", "fashion_mnist_debian", "mnist", "fashion_mnist", "kmnist", "cifar10",
    "synthetic",
)
# Keys that change how a run is watched, not what it computes: a workdir may be resumed with
# other values for them.
NON_SEMANTIC_KEYS = ("log_every_steps", "plots", "progress", "checkpoint_keep", "nan_check_every")


class ConfigError(ValueError):
    """A config key with a value that is not allowed."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"config.{key} = {value!r} is not allowed: {allowed}")


def base_config() -> ml_collections.ConfigDict:
    """Every key a training config has, with its default (plain SGD on the embedded MNIST)."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.dataset = "mnist_5k"
    config.data_dir = ""  # '' → $CNN_JAX_DATA_DIR or ~/tensorflow_datasets
    config.idx_dir = ""  # folder of IDX files for dataset 'idx'
    config.validation_size = 500
    config.train_size = 0  # 0 → all that is left after the validation split
    config.test_size = 0  # 0 → all
    config.expand = False  # Nielsen's expansion: each image plus its four one-pixel shifts

    config.model = ml_collections.ConfigDict()
    config.model.preset = "nielsen_cp2_fc100_relu"  # used when model.layers is empty
    config.model.layers = []
    config.model.init = "lecun_normal"

    config.loss = "cross_entropy"
    config.optimizer = "sgd"
    config.learning_rate = 0.1
    config.momentum = 0.9
    config.schedule = "constant"
    config.l2 = 0.0  # λ, with Nielsen's scaling ½·λ·Σw² / number of training batches
    config.batch_size = 10
    config.num_epochs = 10
    config.eval_batch_size = 1000

    config.strategy = "auto"  # 'step': jitted step per batch; 'scan': epoch fused in lax.scan
    config.log_every_steps = 100
    config.nan_check_every = 50
    config.checkpoint_keep = 2
    config.checkpoint_every_steps = 0  # 0 → only at the end of every epoch (and on SIGTERM)
    config.plots = True
    config.progress = True
    return config


def with_defaults(
    config: Mapping[str, Any] | ml_collections.ConfigDict,
) -> ml_collections.ConfigDict:
    """`config` on top of `base_config()`; unknown keys raise `ConfigError`."""
    merged = base_config()
    _merge(merged, config, "")
    return merged


def _merge(into: ml_collections.ConfigDict, source: Mapping[str, Any], prefix: str) -> None:
    for key, value in dict(source).items():
        path = f"{prefix}{key}"
        if key not in into:
            raise ConfigError(path, value, f"unknown key; known keys: {sorted(into.keys())}")
        if isinstance(into[key], ml_collections.ConfigDict):
            _merge(into[key], value, f"{path}.")
        else:
            with into.unlocked():
                into[key] = value


def layer_dicts(config: ml_collections.ConfigDict) -> list[dict[str, Any]]:
    """The config's layers as plain dicts (from model.layers or the named preset)."""
    if config.model.layers:
        return [dict(layer) for layer in config.model.layers]
    if config.model.preset not in PRESETS:
        raise ConfigError("model.preset", config.model.preset, f"one of {sorted(PRESETS)}")
    return preset(config.model.preset)


def build_network(config: ml_collections.ConfigDict) -> Network:
    """The network a config describes."""
    return Network.from_layers(layer_dicts(config), init_scheme=config.model.init)


def _check_type(config: ml_collections.ConfigDict, key: str, kind: type | tuple) -> Any:
    value = config[key]
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(key, value, f"a {getattr(kind, '__name__', kind)}, not a bool")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(key, value, f"a value of type {names}")
    return value


def _check_choice(config: ml_collections.ConfigDict, key: str, choices: tuple) -> None:
    if config[key] not in choices:
        raise ConfigError(key, config[key], f"one of {list(choices)}")


def _check_range(config, key, kind, low, high=None, *, low_open=False, high_open=True) -> None:
    value = _check_type(config, key, kind)
    below = value <= low if low_open else value < low
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        left = "(" if low_open else "["
        right = "∞)" if high is None else (f"{high})" if high_open else f"{high}]")
        raise ConfigError(key, value, f"a value in {left}{low}, {right}")


def validate_config(config: ml_collections.ConfigDict, input_shape: tuple[int, ...] | None = None
                    ) -> Network:
    """Checks every key of a training config; returns its network. Raises `ConfigError`.

    With `input_shape` (height, width, channels) the network's shapes are checked too.
    """
    with_defaults(config)  # unknown keys
    for key in ("dataset", "optimizer", "schedule", "loss", "strategy"):
        _check_type(config, key, str)
    _check_choice(config, "dataset", DATASETS)
    _check_choice(config, "optimizer", OPTIMIZERS)
    _check_choice(config, "schedule", SCHEDULES)
    _check_choice(config, "loss", LOSSES)
    _check_choice(config, "strategy", STRATEGIES)
    _check_type(config, "seed", int)
    _check_range(config, "learning_rate", (int, float), 0, low_open=True)
    _check_range(config, "momentum", (int, float), 0, 1)
    _check_range(config, "l2", (int, float), 0)
    for key in ("batch_size", "num_epochs", "eval_batch_size", "log_every_steps",
                "nan_check_every", "checkpoint_keep"):
        _check_range(config, key, int, 1)
    for key in ("validation_size", "train_size", "test_size", "checkpoint_every_steps"):
        _check_range(config, key, int, 0)
    if config.dataset == "idx" and not config.idx_dir:
        raise ConfigError("idx_dir", config.idx_dir, "a folder of IDX files for dataset 'idx'")
    _check_type(config.model, "init", str)
    if config.model.init not in KERNEL_SCHEMES:
        raise ConfigError("model.init", config.model.init, f"one of {list(KERNEL_SCHEMES)}")
    layers = layer_dicts(config)
    for index, layer in enumerate(layers):
        _check_layer(index, layer)
    try:
        network = build_network(config)
        if input_shape is not None:
            network.plan(input_shape)
    except ShapeError as error:
        raise ConfigError("model.layers", _short(layers), str(error)) from None
    return network


def _check_layer(index: int, layer: Mapping[str, Any]) -> None:
    key = f"model.layers[{index}]"
    if "activation" in layer and layer["activation"] not in ACTIVATIONS:
        raise ConfigError(f"{key}.activation", layer["activation"], f"one of {sorted(ACTIVATIONS)}")
    if layer.get("type") == "pool" and layer.get("pool_type", "max") not in POOL_TYPES:
        raise ConfigError(f"{key}.pool_type", layer["pool_type"], f"one of {list(POOL_TYPES)}")
    if layer.get("type") == "dropout":
        rate = layer.get("rate", 0.5)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
            raise ConfigError(f"{key}.rate", rate, "a dropout rate in [0, 1)")


def _short(layers: list[dict[str, Any]]) -> str:
    return json.dumps(layers)[:200]


def config_to_json(config: ml_collections.ConfigDict) -> str:
    """Canonical JSON of a config (sorted keys), as written to `workdir/config.json`."""
    return json.dumps(config.to_dict(), sort_keys=True, indent=1, default=str)


def semantic_difference(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Keys (dotted) whose values differ between two config dicts, ignoring non-semantic keys."""
    differences = []
    for key in sorted(set(saved) | set(current)):
        if key in NON_SEMANTIC_KEYS:
            continue
        a, b = saved.get(key), current.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            differences += [f"{key}.{sub}" for sub in semantic_difference(a, b)]
        elif _canonical(a) != _canonical(b):
            differences.append(key)
    return differences


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
