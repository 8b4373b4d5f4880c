"""The model section of a config: its layers as plain dicts, and the network they describe.

`model.layers` wins over `model.preset`; a config that sets neither gets `DEFAULT_PRESET`.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

import ml_collections

from cnn_jax.config.schema import DEFAULT_PRESET
from cnn_jax.errors import ConfigError
from cnn_jax.network import Network
from cnn_jax.presets import PRESETS, preset


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
    return {key: layer_field_value(key, value) for key, value in layer.items()}


def layer_field_value(key: str, value: Any) -> Any:
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
