"""Experiment configs: the defaults every config starts from, and validation before any work.

A config is an `ml_collections.ConfigDict` (see `configs/default.py`). `validate_config` checks
every key, type and value, the sizes against the data set (where they are known before loading)
and the network's shapes, before any data is loaded or anything is compiled; a problem raises
`ConfigError` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from cnn_jax.activations import ACTIVATIONS
from cnn_jax.initializers import KERNEL_SCHEMES
from cnn_jax.layers import POOL_TYPES
from cnn_jax.losses import LOSSES
from cnn_jax.network import LAYER_TYPES, Network, layer_from_dict
from cnn_jax.presets import PRESETS, preset
from cnn_jax.shapes import ShapeError

OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "cosine", "step")
STRATEGIES = ("auto", "step", "scan")
DATASETS = (
    "mnist_5k", "idx", "fashion_mnist_debian", "mnist", "fashion_mnist", "kmnist", "cifar10",
    "synthetic",
)
IDX_DATASETS = ("idx", "fashion_mnist_debian")
# What is known of a data set before loading it: (image shape, training examples, test examples,
# classes). None where it depends on the files ('idx') or on the config ('synthetic' draws
# train_size or 1,000 training and test_size or 200 test examples).
DATASET_FACTS: dict[str, tuple[tuple[int, int, int] | None, int | None, int | None, int | None]] = {
    "mnist_5k": ((28, 28, 1), 4000, 1000, 10),
    "fashion_mnist_debian": ((28, 28, 1), 60000, 10000, 10),
    "mnist": ((28, 28, 1), 60000, 10000, 10),
    "fashion_mnist": ((28, 28, 1), 60000, 10000, 10),
    "kmnist": ((28, 28, 1), 60000, 10000, 10),
    "cifar10": ((32, 32, 3), 50000, 10000, 10),
    "synthetic": ((28, 28, 1), None, None, 10),
    "idx": (None, None, None, None),
}
SYNTHETIC_TRAIN_SIZE = 1000
EXPANSION_FACTOR = 5  # config.expand: each training image plus its four one-pixel shifts
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

    config.strategy = "auto"  # 'step': jitted step per batch; 'scan': steps fused in lax.scan
    config.log_every_steps = 100
    config.nan_check_every = 50  # steps between NaN/inf checks of the loss and the parameters
    config.checkpoint_keep = 2
    config.checkpoint_every_steps = 0  # 0 → only at the end of every epoch (and on SIGTERM)
    config.plots = True
    config.progress = True
    return config


def with_defaults(
    config: Mapping[str, Any] | ml_collections.ConfigDict,
) -> ml_collections.ConfigDict:
    """`config` on top of `base_config()` (missing keys take their defaults).

    Unknown keys and values of the wrong type raise `ConfigError`.
    """
    merged = base_config()
    _merge(merged, config, "")
    return merged


def _merge(into: ml_collections.ConfigDict, source: Any, prefix: str) -> None:
    if not isinstance(source, Mapping | ml_collections.ConfigDict):
        raise ConfigError(prefix.rstrip(".") or "config", source, "a mapping of keys to values")
    for key in source.keys():
        value, path = source[key], f"{prefix}{key}"
        if key not in into:
            raise ConfigError(path, value, f"unknown key; known keys: {sorted(into.keys())}")
        default = into[key]
        if isinstance(default, ml_collections.ConfigDict):
            _merge(default, value, f"{path}.")
            continue
        _check_value_type(path, value, default)
        with into.unlocked():
            try:
                into[key] = value
            except (TypeError, ValueError) as error:  # ConfigDict's own type safety
                raise ConfigError(path, value, _type_name(default)) from error


def _type_name(default: Any) -> str:
    if isinstance(default, bool):
        return "a bool (true or false)"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, str):
        return "a string"
    if isinstance(default, list | tuple):
        return "a list of layer dicts"
    return f"a value of type {type(default).__name__}"


def _check_value_type(path: str, value: Any, default: Any) -> None:
    """The type every key has in `base_config()`: bool, int, number (int or float), str, list."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list | tuple):
        ok = isinstance(value, list | tuple)
    else:
        ok = True
    if not ok:
        raise ConfigError(path, value, _type_name(default))


def layer_dicts(config: ml_collections.ConfigDict) -> list[dict[str, Any]]:
    """The config's layers as plain dicts (from model.layers or the named preset)."""
    if config.model.layers:
        return [_plain(layer) for layer in config.model.layers]
    if config.model.preset not in PRESETS:
        raise ConfigError("model.preset", config.model.preset, f"one of {sorted(PRESETS)}")
    return preset(config.model.preset)


def _plain(layer: Any) -> Any:
    if isinstance(layer, ml_collections.ConfigDict):
        return layer.to_dict()
    return dict(layer) if isinstance(layer, Mapping) else layer


def build_network(config: ml_collections.ConfigDict) -> Network:
    """The network a config describes."""
    return Network.from_layers(layer_dicts(config), init_scheme=config.model.init)


def _check_choice(config: ml_collections.ConfigDict, key: str, choices: Sequence[str]) -> None:
    if config[key] not in choices:
        raise ConfigError(key, config[key], f"one of {list(choices)}")


def _check_range(config, key: str, low: float, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = True) -> None:
    value = config[key]
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(key, value, "a finite number")
    below = value <= low if low_open else value < low
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        left = "(" if low_open else "["
        right = "∞)" if high is None else (f"{high})" if high_open else f"{high}]")
        raise ConfigError(key, value, f"a value in {left}{low}, {right}")


def known_sizes(config: ml_collections.ConfigDict) -> tuple[int | None, int | None]:
    """(training examples a run of `config` gets, test examples available), None if unknown
    before loading."""
    _, train_total, test_total, _ = DATASET_FACTS[config.dataset]
    if config.dataset == "synthetic":
        train = config.train_size or SYNTHETIC_TRAIN_SIZE
    elif config.train_size:
        train = config.train_size
    elif train_total is not None:
        train = train_total - config.validation_size
    else:
        train = None
    if train is not None and config.expand:
        train *= EXPANSION_FACTOR
    return train, test_total


def validate_config(
    config: ml_collections.ConfigDict | Mapping[str, Any],
    input_shape: tuple[int, ...] | None = None, *, dataset: Any = None,
) -> Network:
    """Checks every key of a training config; returns its network. Raises `ConfigError`.

    Sizes (validation/train/test sizes, batch size) are checked against the data set: a loaded
    `dataset` (a `cnn_jax.data.Dataset`) if given, else what is known of the named one before
    loading (`DATASET_FACTS`). The network's shapes are checked for `input_shape` (height, width,
    channels), else for the data set's image shape where known; its output must have one value
    per class.
    """
    config = with_defaults(config)  # unknown keys, wrong types
    for key, choices in (("dataset", DATASETS), ("optimizer", OPTIMIZERS),
                         ("schedule", SCHEDULES), ("loss", LOSSES), ("strategy", STRATEGIES)):
        _check_choice(config, key, choices)
    _check_range(config, "learning_rate", 0, low_open=True)
    _check_range(config, "momentum", 0, 1)
    _check_range(config, "l2", 0)
    for key in ("batch_size", "num_epochs", "eval_batch_size", "log_every_steps",
                "nan_check_every", "checkpoint_keep"):
        _check_range(config, key, 1)
    for key in ("seed", "validation_size", "train_size", "test_size", "checkpoint_every_steps"):
        _check_range(config, key, 0)
    if config.dataset == "idx" and not config.idx_dir:
        raise ConfigError("idx_dir", config.idx_dir, "a folder of IDX files for dataset 'idx'")
    if config.idx_dir and config.dataset not in IDX_DATASETS:
        raise ConfigError("idx_dir", config.idx_dir,
                          f"'' unless dataset is one of {list(IDX_DATASETS)}")

    shape, _, _, classes = DATASET_FACTS[config.dataset]
    if dataset is not None:
        shape, classes = dataset.image_shape, dataset.num_classes
        train_count = len(dataset.train_labels)
        if train_count == 0:
            raise ConfigError("train_size", config.train_size,
                              f"a size that leaves training examples ({dataset.describe()})")
    else:
        _check_sizes(config)
        train_count, _ = known_sizes(config)
    if train_count is not None and config.batch_size > train_count:
        raise ConfigError("batch_size", config.batch_size,
                          f"at most the number of training examples ({train_count})")
    shape = tuple(input_shape) if input_shape is not None else shape
    return _check_network(config, shape, classes)


def _check_sizes(config: ml_collections.ConfigDict) -> None:
    _, train_total, test_total, _ = DATASET_FACTS[config.dataset]
    name = config.dataset
    if train_total is not None:
        if config.validation_size >= train_total:
            raise ConfigError("validation_size", config.validation_size,
                              f"less than the {train_total} training images of {name}")
        left = train_total - config.validation_size
        if config.train_size > left:
            raise ConfigError("train_size", config.train_size,
                              f"at most {left} ({name}'s {train_total} training images less "
                              f"validation_size {config.validation_size}), or 0 for all")
    if test_total is not None and config.test_size > test_total:
        raise ConfigError("test_size", config.test_size,
                          f"at most the {test_total} test images of {name}, or 0 for all")


def _check_network(config: ml_collections.ConfigDict, shape: tuple[int, ...] | None,
                   classes: int | None) -> Network:
    if config.model.init not in KERNEL_SCHEMES:
        raise ConfigError("model.init", config.model.init, f"one of {list(KERNEL_SCHEMES)}")
    layers = layer_dicts(config)
    key = "model.layers" if config.model.layers else "model.preset"
    value = _short(layers) if config.model.layers else config.model.preset
    built = []
    for index, layer in enumerate(layers):
        _check_layer(index, layer)
        try:
            built.append(layer_from_dict(layer, index))
        except ShapeError as error:
            raise ConfigError(f"model.layers[{index}]", layer, str(error)) from None
    network = Network(tuple(built), init_scheme=config.model.init)
    if shape is None:
        return network
    try:
        output = network.output_shape(shape)
    except ShapeError as error:
        raise ConfigError(key, value, f"{error} (input {_shape(shape)})") from None
    if classes is not None and tuple(output) != (classes,):
        raise ConfigError(
            key, value, f"a network that ends in {classes} outputs, one per class of "
            f"{config.dataset}; this one ends in shape {_shape(output)}")
    return network


def _shape(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape)


def _check_layer(index: int, layer: Any) -> None:
    key = f"model.layers[{index}]"
    if not isinstance(layer, Mapping):
        raise ConfigError(key, layer, "a dict such as {'type': 'conv', 'features': 20}")
    if layer.get("type") not in LAYER_TYPES:
        raise ConfigError(f"{key}.type", layer.get("type"), f"one of {sorted(LAYER_TYPES)}")
    if "activation" in layer and layer["activation"] not in ACTIVATIONS:
        raise ConfigError(f"{key}.activation", layer["activation"], f"one of {sorted(ACTIVATIONS)}")
    if layer["type"] == "pool" and layer.get("pool_type", "max") not in POOL_TYPES:
        raise ConfigError(f"{key}.pool_type", layer["pool_type"], f"one of {list(POOL_TYPES)}")
    if layer["type"] == "dropout":
        rate = layer.get("rate", 0.5)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
            raise ConfigError(f"{key}.rate", rate, "a dropout rate in [0, 1)")


def _short(layers: list[dict[str, Any]]) -> str:
    text = json.dumps(layers, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


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
