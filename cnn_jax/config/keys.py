"""Dotted config keys with list indices: the one parser of the command line and of sweeps.

    parse_key("model.layers[0].kernel") == parse_key("model.layers.0.kernel")
        == ("model", "layers", 0, "kernel")
    canonical_key(("model", "layers", 0, "kernel")) == "model.layers[0].kernel"

`set_value` sets a key in a config. A path into `model.layers` of a config that names a preset
(`model.layers` empty) first copies the preset's layer dicts into `model.layers`, so that one
field of a named architecture can be changed; a layer dict takes any field of its layer type.
Faults raise `SweepError` (the sweeps' error, also caught by `cnn_jax.cli`).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import ml_collections

from cnn_jax.config.model import layer_dicts
from cnn_jax.errors import SweepError
from cnn_jax.network import LAYER_TYPES

Path = tuple[str | int, ...]
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\[\d+\]|\d+")


def parse_key(key: str) -> Path:
    """'model.layers[0].kernel' or 'model.layers.0.kernel' → ('model', 'layers', 0, 'kernel')."""
    if not isinstance(key, str) or not key:
        raise SweepError(f"a swept key must be a non-empty dotted path, got {key!r}")
    path: list[str | int] = []
    for part in key.split("."):
        tokens = _TOKEN.findall(part)
        if not part or "".join(tokens) != part or tokens[0].startswith("["):
            raise SweepError(f"cannot parse the key {key!r} (e.g. 'model.layers[0].kernel')")
        for token in tokens:
            if token.startswith("["):
                path.append(int(token[1:-1]))
            elif token.isdigit():
                path.append(int(token))
            else:
                path.append(token)
    return tuple(path)


def canonical_key(key: str | Path) -> str:
    """The one spelling used in files and tables: 'model.layers[0].kernel'."""
    path = parse_key(key) if isinstance(key, str) else key
    text = ""
    for item in path:
        text += f"[{item}]" if isinstance(item, int) else (f".{item}" if text else item)
    return text


def _materialize_layers(config: ml_collections.ConfigDict) -> None:
    if not config.model.layers:
        config.model.layers, config.model.preset = layer_dicts(config), ""


def set_value(config: ml_collections.ConfigDict, key: str | Path, value: Any) -> None:
    """Sets `key` in `config` (in place); raises `SweepError` for a path that does not exist."""
    path = parse_key(key) if isinstance(key, str) else key
    if path[:2] == ("model", "layers"):
        _materialize_layers(config)
    node: Any = config
    for depth, item in enumerate(path[:-1]):
        node = _child(node, item, path, depth)
    last = path[-1]
    if isinstance(node, list):
        if not isinstance(last, int) or not 0 <= last < len(node):
            raise SweepError(f"{canonical_key(path)}: index {last!r} outside the list")
        node[last] = value
    elif isinstance(node, ml_collections.ConfigDict):
        if isinstance(last, int) or last not in node:
            raise SweepError(f"{canonical_key(path)}: no such config key")
        try:
            node[last] = value
        except (TypeError, ValueError) as error:
            raise SweepError(f"{canonical_key(path)} = {value!r}: {error}") from None
    elif isinstance(node, dict):
        # A layer dict takes any field of its layer type, also one it leaves at the default.
        _check_layer_field(node, last, path)
        node[last] = value
    else:
        raise SweepError(f"{canonical_key(path)}: {canonical_key(path[:-1])} is not a container")


def _check_layer_field(layer: dict, field: str | int, path: Path) -> None:
    kind = LAYER_TYPES.get(layer.get("type"))
    if kind is None or field == "type":
        return
    allowed = [f.name for f in dataclasses.fields(kind)]
    if field not in allowed:
        raise SweepError(f"{canonical_key(path)}: a {layer['type']} layer has no field "
                         f"{field!r}; its fields: {allowed}")


def _child(node: Any, item: str | int, path: Path, depth: int) -> Any:
    where = canonical_key(path[: depth + 1])
    if isinstance(node, list):
        if not isinstance(item, int) or not 0 <= item < len(node):
            raise SweepError(f"{where}: index outside the list of {len(node)}")
        return node[item]
    if isinstance(node, ml_collections.ConfigDict | dict):
        if isinstance(item, int) or item not in node:
            raise SweepError(f"{where}: no such config key")
        return node[item]
    raise SweepError(f"{where}: {canonical_key(path[:depth])} is not a container")


def normalized_key(key: str) -> str:
    """`key` in its canonical spelling ('model.layers.0.kernel' → 'model.layers[0].kernel'), or
    unchanged if it does not parse (the caller then reports it as it was given)."""
    try:
        return canonical_key(parse_key(key))
    except SweepError:
        return key


def is_layer_field(key: str) -> bool:
    """True for a key into a layer of a layer list ('model.layers[0].kernel', 'model.layers[1]')."""
    try:
        path = parse_key(key)
    except SweepError:
        return False
    return any(item == "layers" and isinstance(following, int)
               for item, following in zip(path, path[1:], strict=False))
