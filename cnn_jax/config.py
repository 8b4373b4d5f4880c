"""Experiment configs: the defaults every config starts from, and validation before any work.

A config is an `ml_collections.ConfigDict` (see `configs/default.py`). `validate_config` checks
every key, type and value against the registries beside each implementation (data sets,
optimizers, schedules, losses, init schemes, activations, layer types, formulations), the sizes
against what is known of the data set before loading it, and the network's shapes; a problem
raises `ConfigError` naming the key, the value and what is allowed. `check_loaded` adds the
checks that need the loaded data set.
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from cnn_jax.data.augment import EXPANSION_FACTOR
from cnn_jax.data.registry import DATASETS, DatasetInfo, dataset_info, dataset_names
from cnn_jax.data.synthetic import SYNTHETIC_TRAIN_SIZE
from cnn_jax.errors import ConfigError, LayerError, ShapeError
from cnn_jax.initializers import KERNEL_SCHEMES
from cnn_jax.layers import formulations
from cnn_jax.losses import LOSSES
from cnn_jax.network import Network, layer_from_dict
from cnn_jax.optim import OPTIMIZERS, SCHEDULES
from cnn_jax.presets import PRESETS, preset

# Keys that change how a run is watched, not what it computes: a workdir may be resumed with
# other values for them.
NON_SEMANTIC_KEYS = ("log_every_steps", "plots", "progress", "checkpoint_keep", "nan_check_every")
DEFAULT_PRESET = "nielsen_cp2_fc100_relu"  # the network of a config that names none

__all__ = ["ConfigError", "base_config", "build_network", "check_loaded", "config_to_json",
           "layer_dicts", "semantic_difference", "validate_config", "with_defaults"]


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
    config.model.preset = ""  # a name of cnn_jax.presets, or ''
    config.model.layers = []  # layer dicts; a config sets these or a preset (neither: DEFAULT)
    config.model.init = "lecun_normal"

    config.loss = "cross_entropy"
    config.optimizer = "sgd"
    config.learning_rate = 0.1
    config.momentum = 0.9  # optimizer 'momentum'
    config.adam_b1 = 0.9  # optimizer 'adam': decay rates of its first and second moments
    config.adam_b2 = 0.999
    config.schedule = "constant"
    config.l2 = 0.0  # λ, with Nielsen's scaling ½·λ·Σw² / number of training batches
    config.batch_size = 10
    config.num_epochs = 10
    config.eval_batch_size = 1000

    # How the steps are computed (cnn_jax.formulations): same numbers, other programs.
    config.strategy = "auto"  # 'step': jitted step per batch; 'scan': steps fused in lax.scan
    config.formulation = ml_collections.ConfigDict()
    config.formulation.conv = "auto"  # 'lax', 'offsets', 'canonical', 'im2col'
    config.formulation.pool = "auto"  # 'lax', 'reshape'
    config.formulation.microbatches = 0  # 0 → auto; else parts of a training step's batch

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
    """The config's layers as plain dicts: model.layers, else the preset model.preset, else the
    preset `DEFAULT_PRESET`. Values given as text on the command line ('2', '(1, 2)') are read
    as the numbers they spell."""
    if config.model.layers:
        return [_plain(layer) for layer in config.model.layers]
    name = config.model.preset or DEFAULT_PRESET
    if name not in PRESETS:
        raise ConfigError("model.preset", config.model.preset, f"one of {sorted(PRESETS)}")
    return preset(name)


def _plain(layer: Any) -> Any:
    if isinstance(layer, ml_collections.ConfigDict):
        layer = layer.to_dict()
    if not isinstance(layer, Mapping):
        return layer
    return {key: _number(key, value) for key, value in layer.items()}


def _number(key: str, value: Any) -> Any:
    """'2' → 2, '(1, 2)' → (1, 2) (an override of a field whose default is text); else value."""
    if key == "type" or not isinstance(value, str):
        return value
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return value
    return parsed if isinstance(parsed, int | float | tuple | list) else value


def build_network(config: ml_collections.ConfigDict) -> Network:
    """The network a config describes."""
    return Network.from_layers(layer_dicts(config), init_scheme=config.model.init)


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
    if config.idx_dir and not info.uses_idx_dir:
        users = [name for name, entry in DATASETS.items() if entry.uses_idx_dir]
        raise ConfigError("idx_dir", config.idx_dir, f"'' unless dataset is one of {users}")
    if config.model.layers and config.model.preset:
        raise ConfigError("model.preset", config.model.preset,
                          "'' for a config that lists its layers (model.layers): one "
                          "architecture, so that every field of it can be overridden")

    _check_sizes(config, info)
    train_count, _ = known_sizes(config, info)
    if train_count is not None and config.batch_size > train_count:
        raise ConfigError("batch_size", config.batch_size,
                          f"at most the number of training examples ({train_count})")
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
    if config.batch_size > train_count:
        raise ConfigError("batch_size", config.batch_size,
                          f"at most the number of training examples ({train_count})")
    info = dataset_info(config.dataset)
    if info is None or info.image_shape != dataset.image_shape or info.classes is None:
        _check_output(config, network, dataset.image_shape, dataset.num_classes)
    if config.batch_size % devices:
        raise ConfigError("batch_size", config.batch_size,
                          f"a multiple of the number of devices ({devices})")


def _check_sizes(config: ml_collections.ConfigDict, info: DatasetInfo) -> None:
    name = config.dataset
    if info.train is not None:
        if config.validation_size >= info.train:
            raise ConfigError("validation_size", config.validation_size,
                              f"less than the {info.train} training images of {name}")
        left = info.train - config.validation_size
        if config.train_size > left:
            raise ConfigError("train_size", config.train_size,
                              f"at most {left} ({name}'s {info.train} training images less "
                              f"validation_size {config.validation_size}), or 0 for all")
    if info.test is not None and config.test_size > info.test:
        raise ConfigError("test_size", config.test_size,
                          f"at most the {info.test} test images of {name}, or 0 for all")


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

