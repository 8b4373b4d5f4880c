"""Dotted config paths with list indices: parse, read and set them; short labels for trial ids.

    parse_key("model.layers[0].kernel") == parse_key("model.layers.0.kernel")
        == ("model", "layers", 0, "kernel")
    canonical_key(("model", "layers", 0, "kernel")) == "model.layers[0].kernel"

A path into `model.layers` of a config that names a preset (`model.layers` empty) first copies the
preset's layer dicts into `model.layers`, so a sweep can change one field of a named architecture.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

import ml_collections

from cnn_jax.config import layer_dicts
from cnn_jax.errors import SweepError

Path = tuple[str | int, ...]
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\[\d+\]|\d+")

# Short names of the usual swept fields, for trial ids such as 'k5-s1-pmax-seed0'.
ABBREVIATIONS = {
    "kernel": "k", "stride": "s", "pool_type": "p", "window": "w", "features": "f",
    "padding": "pad", "dilation": "d", "activation": "act", "rate": "drop",
    "learning_rate": "lr", "l2": "lam", "momentum": "mom", "optimizer": "opt",
    "batch_size": "bs", "num_epochs": "ep", "schedule": "sched", "train_size": "n",
    "init": "init", "loss": "loss", "preset": "net",
}


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
    from cnn_jax.network import LAYER_TYPES

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


def short_labels(keys: Sequence[str], overrides: dict[str, str] | None = None) -> dict[str, str]:
    """{canonical key: short label}: 'model.layers[0].kernel' → 'k'; clashing labels get the
    layer index appended ('f0', 'f2'); `overrides` (canonical or dotted keys) win."""
    overrides = {canonical_key(k): v for k, v in (overrides or {}).items()}
    paths = {canonical_key(k): parse_key(k) for k in keys}
    base = {k: ABBREVIATIONS.get(str(p[-1]), str(p[-1])) for k, p in paths.items()}
    labels = dict(base)
    for key, path in paths.items():
        if list(base.values()).count(base[key]) > 1:
            indices = [str(i) for i in path if isinstance(i, int)]
            labels[key] = base[key] + "".join(indices) if indices else canonical_key(path)
    labels.update({k: v for k, v in overrides.items() if k in labels})
    if len(set(labels.values())) != len(labels):
        raise SweepError(f"swept keys need distinct labels, got {labels}; set config.labels")
    return labels


LONGEST_VALUE = 40  # a value whose text is longer (e.g. a whole layer list) is named by digest


def format_value(value: Any) -> str:
    """A value as it appears in a trial id: 0.1 → '0.1', 'max' → 'max', (3, 5) → '3x5'; a value
    that would read longer than `LONGEST_VALUE` characters (a whole architecture) → the first 8
    hex digits of the SHA-256 of its canonical JSON (`digest`), the same in every process."""
    text = _text(value)
    return digest(value) if len(text) > LONGEST_VALUE else text


def is_digest(value: Any) -> bool:
    """True if `format_value` names `value` by its digest."""
    return len(_text(value)) > LONGEST_VALUE


def digest(value: Any) -> str:
    """8 hex digits of the SHA-256 of `value` as canonical JSON (ConfigDicts as dicts, tuples as
    lists, keys sorted)."""
    import hashlib
    import json

    text = json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _plain(value: Any) -> Any:
    if isinstance(value, ml_collections.ConfigDict):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        text = "T" if value else "F"
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, list | tuple):
        text = "x".join(_text(v) for v in value)
    else:
        text = str(value)
    return re.sub(r"[^A-Za-z0-9.+_-]", "_", text)
