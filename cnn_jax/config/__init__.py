"""Training configs: the schema of every key (default and role), validation, dotted keys, data.

A config is an `ml_collections.ConfigDict`. Where each rule lives:

* `cnn_jax.config.schema` — every key with its default and its role (`PER_RUN_KEYS`,
  `DATA_KEYS`, `NON_SEMANTIC_KEYS`, the rest semantic); `schema_defaults()`, `with_defaults`
  (unknown keys, wrong types), `semantic_difference`, `config_to_json`;
* `cnn_jax.config.model` — the layers a config describes (`model.layers`, else a preset);
* `cnn_jax.config.validate` — `validate_config` before any work, `check_loaded` after loading;
* `cnn_jax.config.keys` — the one parser of dotted keys with list indices
  (`model.layers[0].kernel`, `model.layers.0.kernel`), used by the command line and by sweeps;
* `cnn_jax.config.data` — the data set a config names, loaded once per `data_key`.

`schema_defaults()` is every key at its default; `configs/default.py` is the project's default
experiment (`make run`), built on top of it.
"""

from cnn_jax.config.data import DatasetCache, data_key, load_for_config
from cnn_jax.config.keys import canonical_key, parse_key, set_value
from cnn_jax.config.model import build_network, layer_dicts
from cnn_jax.config.schema import (
    DATA_KEYS,
    DEFAULT_PRESET,
    NON_SEMANTIC_KEYS,
    PER_RUN_KEYS,
    SCHEMA,
    config_to_json,
    role,
    schema_defaults,
    semantic_difference,
    with_defaults,
)
from cnn_jax.config.validate import check_formulation, check_loaded, known_sizes, validate_config
from cnn_jax.errors import ConfigError

__all__ = ["DATA_KEYS", "DEFAULT_PRESET", "NON_SEMANTIC_KEYS", "PER_RUN_KEYS", "SCHEMA",
           "ConfigError", "DatasetCache", "build_network", "canonical_key",
           "check_formulation", "check_loaded", "config_to_json", "data_key", "known_sizes",
           "layer_dicts", "load_for_config", "parse_key", "role", "schema_defaults",
           "semantic_difference", "set_value", "validate_config", "with_defaults"]
