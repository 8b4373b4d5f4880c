"""Validation of a training config before any work: every key, type, value, size and shape.

`validate_config` checks every key, type and value against the registries beside each
implementation (data sets, optimizers, schedules, losses, init schemes, activations, layer types,
formulations), the sizes against what is known of the data set before loading it, and the
network's shapes; a problem raises `ConfigError` naming the key, the value and what is allowed.
`check_loaded` adds the checks that need the loaded data set.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from cnn_jax.config.model import layer_dicts
from cnn_jax.config.schema import DEFAULT_PRESET, with_defaults
from cnn_jax.data.augment import EXPANSION_FACTOR
from cnn_jax.data.loading import check_idx_dir, check_split_sizes
from cnn_jax.data.registry import DatasetInfo, dataset_info, dataset_names
from cnn_jax.data.synthetic import SYNTHETIC_TRAIN_SIZE
from cnn_jax.errors import ConfigError, LayerError, ShapeError
from cnn_jax.initializers import KERNEL_SCHEMES
from cnn_jax.layers import formulations
from cnn_jax.losses import LOSSES
from cnn_jax.network import Network, layer_from_dict
from cnn_jax.optim import OPTIMIZERS, SCHEDULES


def _check_choice(config: ml_collections.ConfigDict, key: str, choices: Sequence[str]) -> None:
    value = config
    for part in key.split("."):
        value = value[part]
    if value not in choices:
        raise ConfigError(key, value, f"one of {list(choices)}")


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


def known_sizes(config: ml_collections.ConfigDict, info: DatasetInfo
                ) -> tuple[int | None, int | None]:
    """(training examples a run of `config` gets, test examples available), None if unknown
    before loading."""
    if config.dataset == "synthetic":
        train = config.train_size or SYNTHETIC_TRAIN_SIZE
    elif config.train_size:
        train = config.train_size
    elif info.train is not None:
        train = info.train - config.validation_size
    else:
        train = None
    if train is not None and config.expand:
        train *= EXPANSION_FACTOR
    return train, info.test


def validate_config(
    config: ml_collections.ConfigDict | Mapping[str, Any],
    input_shape: tuple[int, ...] | None = None,
) -> Network:
    """Checks every key of a training config; returns its network. Raises `ConfigError`.

    Sizes (validation/train/test sizes, batch size) are checked against what is known of the
    data set before loading it (`cnn_jax.data.registry`). The network's shapes are checked for
    `input_shape` (height, width, channels), else for the data set's image shape where known;
    its output must have one value per class.
    """
    config = with_defaults(config)  # unknown keys, wrong types
    info = dataset_info(config.dataset)
    if info is None:
        raise ConfigError("dataset", config.dataset, f"one of {dataset_names()}")
    for key, choices in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("loss", LOSSES),
                         ("strategy", formulations.STRATEGIES), ("model.init", KERNEL_SCHEMES)):
        _check_choice(config, key, choices)
    _check_range(config, "learning_rate", 0, low_open=True)
    for key in ("momentum", "adam_b1", "adam_b2"):
        _check_range(config, key, 0, 1)
    _check_range(config, "l2", 0)
    for key in ("batch_size", "num_epochs", "eval_batch_size", "log_every_steps",
                "nan_check_every", "checkpoint_keep"):
        _check_range(config, key, 1)
    for key in ("seed", "validation_size", "train_size", "test_size", "checkpoint_every_steps"):
        _check_range(config, key, 0)
    if config.dataset == "idx" and not config.idx_dir:
        raise ConfigError("idx_dir", config.idx_dir, "a folder of IDX files for dataset 'idx'")
    check_idx_dir(config.dataset, config.idx_dir)
    if config.model.layers and config.model.preset:
        raise ConfigError("model.preset", config.model.preset,
                          "'' for a config that lists its layers (model.layers): one "
                          "architecture, so that every field of it can be overridden")

    check_split_sizes(config.dataset, info.train, info.test, validation_size=config.validation_size,
                      train_size=config.train_size, test_size=config.test_size)
    train_count, _ = known_sizes(config, info)
    if train_count is not None:
        _check_batch_size(config, train_count)
    shape = tuple(input_shape) if input_shape is not None else info.image_shape
    return _check_network(config, shape, info.classes)


def check_loaded(config: ml_collections.ConfigDict, network: Network, dataset: Any,
                 devices: int = 1) -> None:
    """The checks that need the loaded data set (a `cnn_jax.data.Dataset`) and the devices:
    training examples left, batch size, the network on the real image shape and classes, and a
    batch that splits evenly over `devices`. Raises `ConfigError`."""
    train_count = len(dataset.train_labels)
    if train_count == 0:
        raise ConfigError("train_size", config.train_size,
                          f"a size that leaves training examples ({dataset.describe()})")
    _check_batch_size(config, train_count)
    info = dataset_info(config.dataset)
    if info is None or info.image_shape != dataset.image_shape or info.classes is None:
        _check_output(config, network, dataset.image_shape, dataset.num_classes)
    if config.batch_size % devices:
        raise ConfigError("batch_size", config.batch_size,
                          f"a multiple of the number of devices ({devices})")


def _check_batch_size(config: ml_collections.ConfigDict, train_count: int) -> None:
    if config.batch_size > train_count:
        raise ConfigError("batch_size", config.batch_size,
                          f"at most the number of training examples ({train_count})")


def _check_network(config: ml_collections.ConfigDict, shape: tuple[int, ...] | None,
                   classes: int | None) -> Network:
    layers = layer_dicts(config)
    built = []
    for index, layer in enumerate(layers):
        key = f"model.layers[{index}]"
        if not isinstance(layer, Mapping):
            raise ConfigError(key, layer, "a dict such as {'type': 'conv', 'features': 20}")
        try:
            built.append(layer_from_dict(layer, index))
        except LayerError as error:
            raise _layer_error(key, layer, error) from None
    network = Network(tuple(built), init_scheme=config.model.init)
    if shape is not None:
        _check_output(config, network, shape, classes)
    check_formulation(config, network, shape)
    return network


def _layer_error(key: str, layer: Mapping[str, Any], error: LayerError) -> ConfigError:
    """A layer's fault as a config error on its field: `model.layers[0].activation`."""
    field = error.field
    if field is not None and field in layer:
        return ConfigError(f"{key}.{field}", layer[field], str(error))
    return ConfigError(key, _short(layer), str(error))


def _check_output(config: ml_collections.ConfigDict, network: Network, shape: tuple[int, ...],
                  classes: int | None) -> None:
    """The plan of every layer for `shape`, and an output of one value per class."""
    layers = layer_dicts(config)

    def error_at(index: int, allowed: str) -> ConfigError:
        if config.model.layers:
            return ConfigError(f"model.layers[{index}]", _short(layers[index]), allowed)
        return ConfigError("model.preset", config.model.preset or DEFAULT_PRESET, allowed)

    try:
        network.check_input_shape(shape)
    except ShapeError as error:
        raise ConfigError("input_shape", tuple(shape), str(error)) from None
    current = tuple(shape)
    for index, (name, layer) in enumerate(zip(network.names, network.layers, strict=True)):
        try:
            current = layer.plan(name, current).output_shape
        except LayerError as error:
            if config.model.layers:
                raise _layer_error(f"model.layers[{index}]", layers[index], error) from None
            raise error_at(index, str(error)) from None
        except ShapeError as error:
            raise error_at(index, f"{error} (network input {_shape(shape)})") from None
    if classes is not None and current != (classes,):
        raise error_at(len(layers) - 1, f"a network that ends in {classes} outputs, one per "
                       f"class of {config.dataset}; this one ends in shape {_shape(current)}")


def check_formulation(config: ml_collections.ConfigDict, network: Network,
                      shape: tuple[int, ...] | None) -> None:
    """config.formulation's explicit choices must be able to take effect on this network."""
    _check_choice(config, "formulation.conv", ("auto", *formulations.CONV))
    _check_choice(config, "formulation.pool", ("auto", *formulations.POOL))
    if shape is None:
        return
    plans = network.plan(shape)
    for training in (True, False):  # the backend does not change what an explicit value means
        formulations.choose(**config.formulation.to_dict(), plans=plans,
                            batch_size=config.batch_size, backend="cpu", training=training)


def _shape(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape)


def _short(layer: Any) -> str:
    text = json.dumps(layer, default=str)
    return text if len(text) <= 120 else text[:117] + "..."
