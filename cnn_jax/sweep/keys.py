"""Swept keys in trial ids: short labels ('model.layers[0].kernel' → 'k') and value texts.

Dotted keys themselves are parsed, spelled and set by `cnn_jax.config.keys` (re-exported here:
`parse_key`, `canonical_key`, `set_value`), the parser the command line uses too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import ml_collections

from cnn_jax.config.keys import Path, canonical_key, parse_key, set_value
from cnn_jax.errors import SweepError

__all__ = ["ABBREVIATIONS", "Path", "SweepError", "canonical_key", "digest", "format_value",
           "is_digest", "parse_key", "set_value", "short_labels"]

# Short names of the usual swept fields, for trial ids such as 'k5-s1-pmax-seed0'.
ABBREVIATIONS = {
    "kernel": "k", "stride": "s", "pool_type": "p", "window": "w", "features": "f",
    "padding": "pad", "dilation": "d", "activation": "act", "rate": "drop",
    "learning_rate": "lr", "l2": "lam", "momentum": "mom", "optimizer": "opt",
    "batch_size": "bs", "num_epochs": "ep", "schedule": "sched", "train_size": "n",
    "init": "init", "loss": "loss", "preset": "net",
}


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
