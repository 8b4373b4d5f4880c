"""The schema of a training config: every key, its default, and its role.

Roles (`role(key)`):

* per-run value (`PER_RUN_KEYS`): a number each run of a vmapped group may set for itself
  (learning rate, λ, the optimizer's decay rates, the seed); everything else must be shared;
* data-identifying (`DATA_KEYS`): the keys that pick the data set and its splits — runs that agree
  on them can share one loaded data set (`cnn_jax.config.data`); the seed picks the data only
  for the synthetic set, drawn from it;
* non-semantic (`NON_SEMANTIC_KEYS`): how a run is watched, not what it computes — a workdir may
  be resumed with other values for them;
* semantic: the rest.

`schema_defaults()` is the config with every key at its default: a small SGD run on the embedded
MNIST subset. It is not `configs/default.py`, the project's default *experiment* (`make run`),
which starts from these defaults and sets the full MNIST, a momentum optimizer and more.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import ml_collections

from cnn_jax.errors import ConfigError
from cnn_jax.network import Network

PER_RUN = "per-run value"
DATA = "data-identifying"
NON_SEMANTIC = "non-semantic"
SEMANTIC = "semantic"
DEFAULT_PRESET = "nielsen_cp2_fc100_relu"  # the network of a config that names none


@dataclasses.dataclass(frozen=True)
class Key:
    """One key of the schema: its dotted path, default, role and what it means."""

    path: str
    default: Any
    role: str
    note: str = ""


SCHEMA: tuple[Key, ...] = (
    Key("dataset", "mnist_5k", DATA, "a name of cnn_jax.data.registry.DATASETS"),
    Key("data_dir", "", DATA, "'' → $CNN_JAX_DATA_DIR or ~/tensorflow_datasets"),
    Key("idx_dir", "", DATA, "folder of IDX files for dataset 'idx'"),
    Key("validation_size", 500, DATA, "the last training images held out for validation"),
    Key("train_size", 0, DATA, "0 → all that is left after the validation split"),
    Key("test_size", 0, DATA, "0 → all"),
    Key("expand", False, DATA, "Nielsen's expansion: each image plus its four one-pixel shifts"),
    Key("model.preset", "", SEMANTIC, "a name of cnn_jax.presets, or ''"),
    Key("model.layers", [], SEMANTIC,
        f"layer dicts; a config sets these or a preset (neither: {DEFAULT_PRESET})"),
    Key("model.init", Network.init_scheme, SEMANTIC, "a scheme of cnn_jax.initializers"),
    Key("loss", "cross_entropy", SEMANTIC),
    Key("optimizer", "sgd", SEMANTIC),
    Key("learning_rate", 0.1, PER_RUN),
    Key("l2", 0.0, PER_RUN, "λ, with Nielsen's scaling ½·λ·Σw² / number of training batches"),
    Key("momentum", 0.9, PER_RUN, "optimizer 'momentum'"),
    Key("adam_b1", 0.9, PER_RUN, "optimizer 'adam': decay rate of its first moment"),
    Key("adam_b2", 0.999, PER_RUN, "optimizer 'adam': decay rate of its second moment"),
    Key("seed", 0, PER_RUN, "draws the parameters, dropout masks, data order (synthetic: data)"),
    Key("schedule", "constant", SEMANTIC),
    Key("batch_size", 10, SEMANTIC),
    Key("num_epochs", 10, SEMANTIC),
    Key("eval_batch_size", 1000, SEMANTIC),
    Key("strategy", "auto", SEMANTIC, "'step': jitted step per batch; 'scan': lax.scan of steps"),
    Key("formulation.conv", "auto", SEMANTIC, "'lax', 'offsets', 'canonical', 'im2col'"),
    Key("formulation.pool", "auto", SEMANTIC, "'lax', 'reshape'"),
    Key("formulation.microbatches", 0, SEMANTIC, "0 → auto; else parts of a training batch"),
    Key("log_every_steps", 100, NON_SEMANTIC),
    Key("nan_check_every", 50, NON_SEMANTIC, "steps between NaN/inf checks of loss and params"),
    Key("checkpoint_keep", 2, NON_SEMANTIC),
    Key("checkpoint_every_steps", 0, SEMANTIC, "0 → only at the end of every epoch"),
    Key("plots", True, NON_SEMANTIC),
    Key("progress", True, NON_SEMANTIC),
)


def _with_role(wanted: str) -> tuple[str, ...]:
    return tuple(key.path for key in SCHEMA if key.role == wanted)


# Ordered as `cnn_jax.train` takes them (the shared interface of a vmapped group).
PER_RUN_KEYS = _with_role(PER_RUN)
# The seed last: it picks the data of the synthetic set only (`cnn_jax.config.data.data_key`).
DATA_KEYS = (*_with_role(DATA), "seed")
NON_SEMANTIC_KEYS = _with_role(NON_SEMANTIC)
_ROLES = {key.path: key.role for key in SCHEMA}


def role(path: str) -> str:
    """The role of a dotted key: `PER_RUN`, `DATA`, `NON_SEMANTIC` or `SEMANTIC`; KeyError if
    the schema has no such key."""
    return _ROLES[path]


def schema_defaults() -> ml_collections.ConfigDict:
    """A new config with every key of `SCHEMA` at its default."""
    config = ml_collections.ConfigDict()
    for key in SCHEMA:
        *sections, name = key.path.split(".")
        node = config
        for section in sections:
            if section not in node:
                node[section] = ml_collections.ConfigDict()
            node = node[section]
        node[name] = list(key.default) if isinstance(key.default, list) else key.default
    return config


def with_defaults(
    config: Mapping[str, Any] | ml_collections.ConfigDict,
) -> ml_collections.ConfigDict:
    """`config` on top of `schema_defaults()` (missing keys take their defaults).

    Unknown keys and values of the wrong type raise `ConfigError`.
    """
    merged = schema_defaults()
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
    """The type each key has in `schema_defaults()`: bool, int, number (int or float), str, list."""
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

