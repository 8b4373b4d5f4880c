"""The grid of a sweep config: axes (product or zip groups) × seeds → trials with stable ids.

A sweep config (`configs/sweeps/*.py`) is a ConfigDict with

    base   a full training config (every trial starts from a copy of it)
    axes   a list of groups, each {'product': {key: [values]}} or {'zip': {key: [v], key2: [v]}}
    seeds  a list of seeds (default [base.seed])
    name   optional; labels: optional {key: short label} for trial ids

Keys are dotted config paths with list indices (`model.layers.0.kernel` or
`model.layers[0].kernel`). Every key of a product group is one dimension of the grid; a zip group
is one dimension whose keys change together. The first dimension varies slowest; seeds vary
slowest of all, so a sweep cut short has already run every configuration once. A trial's id is
built from its values, e.g. `k5-s1-pmax-seed0`, so it does not depend on the order of the grid; a
value too long for a folder name (a whole layer list) is named by a digest of its content, e.g.
`layers_3f2a9c1b-seed0` (sweep.json keeps the values).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from typing import Any

import ml_collections

from cnn_jax.sweep.keys import (
    SweepError,
    canonical_key,
    format_value,
    is_digest,
    set_value,
    short_labels,
)


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One axis of the grid: a product key, or the keys of a zip group (changing together)."""

    keys: tuple[str, ...]
    labels: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]  # one tuple (a value per key) per point of the axis

    @property
    def name(self) -> str:
        return "+".join(self.labels)

    def point_label(self, point: tuple[Any, ...]) -> str:
        """How a value of this axis reads in tables and plots: '5', or 'k5,s2' for a zip."""
        if len(self.keys) == 1:
            return format_value(point[0])
        pairs = zip(self.labels, point, strict=True)
        return ",".join(f"{label}{format_value(value)}" for label, value in pairs)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "keys": list(self.keys), "labels": list(self.labels),
                "values": [list(v) for v in self.values]}


@dataclasses.dataclass(frozen=True)
class Trial:
    """One training run of the sweep."""

    id: str
    group: str  # the id without the seed: trials of one group differ only in their seed
    values: dict[str, Any]  # canonical key → value
    seed: int
    config: ml_collections.ConfigDict

    def record(self) -> dict[str, Any]:
        return {"id": self.id, "group": self.group, "values": self.values, "seed": self.seed}


@dataclasses.dataclass(frozen=True)
class Sweep:
    name: str
    base: ml_collections.ConfigDict
    dimensions: tuple[Dimension, ...]
    seeds: tuple[int, ...]

    @property
    def keys(self) -> list[str]:
        return [key for dim in self.dimensions for key in dim.keys]

    def trials(self) -> list[Trial]:
        return expand(self)


def _groups(axes: Any) -> list[tuple[str, dict[str, list[Any]]]]:
    if not isinstance(axes, list | tuple):
        raise SweepError(f"config.axes must be a list of groups, got {type(axes).__name__}")
    groups = []
    for index, group in enumerate(axes):
        group = group.to_dict() if isinstance(group, ml_collections.ConfigDict) else group
        if not isinstance(group, dict) or len(group) != 1 or next(iter(group)) not in (
                "product", "zip"):
            raise SweepError(f"config.axes[{index}] must be {{'product': {{...}}}} or "
                             f"{{'zip': {{...}}}}, got {group!r}")
        kind, mapping = next(iter(group.items()))
        if not isinstance(mapping, dict) or not mapping:
            raise SweepError(f"config.axes[{index}].{kind} must map keys to lists of values")
        for key, values in mapping.items():
            if not isinstance(values, list | tuple) or not values:
                raise SweepError(f"config.axes[{index}].{kind}[{key!r}] must be a non-empty list")
        if kind == "zip" and len({len(v) for v in mapping.values()}) != 1:
            lengths = {k: len(v) for k, v in mapping.items()}
            raise SweepError(f"config.axes[{index}].zip lists differ in length: {lengths}")
        groups.append((kind, {key: list(values) for key, values in mapping.items()}))
    return groups


def load_sweep(sweep_config: ml_collections.ConfigDict) -> Sweep:
    """Checks the structure of a sweep config and returns its `Sweep`; raises `SweepError`."""
    if "base" not in sweep_config or not isinstance(sweep_config.base, ml_collections.ConfigDict):
        raise SweepError("a sweep config needs `base`, a full training config (ConfigDict)")
    base = sweep_config.base
    groups = _groups(sweep_config.get("axes", []))
    seeds = list(sweep_config.get("seeds", None) or [base.seed])
    if any(isinstance(s, bool) or not isinstance(s, int) for s in seeds) or len(set(seeds)) != len(
            seeds):
        raise SweepError(f"config.seeds must be distinct ints, got {seeds}")
    keys = [canonical_key(key) for _, mapping in groups for key in mapping]
    if len(set(keys)) != len(keys):
        raise SweepError(f"a key is swept twice: {keys}")
    if "seed" in keys:
        raise SweepError("sweep seeds with config.seeds, not as an axis")
    overrides = sweep_config.get("labels", None)
    labels = short_labels(keys, overrides.to_dict() if overrides is not None else None)
    dimensions = []
    for kind, mapping in groups:
        canon = [canonical_key(k) for k in mapping]
        columns = list(mapping.values())
        if kind == "zip":
            dimensions.append(Dimension(tuple(canon), tuple(labels[k] for k in canon),
                                        tuple(tuple(p) for p in zip(*columns, strict=True))))
        else:
            dimensions += [Dimension((k,), (labels[k],), tuple((v,) for v in values))
                           for k, values in zip(canon, columns, strict=True)]
    for dim in dimensions:  # every key must exist in the base config
        set_value(copy.deepcopy(base), dim.keys[0], dim.values[0][0])
    return Sweep(str(sweep_config.get("name", "") or ""), base, tuple(dimensions), tuple(seeds))


def trial_id(sweep: Sweep, values: dict[str, Any], seed: int | None) -> str:
    parts = []
    for dim in sweep.dimensions:
        for key, label in zip(dim.keys, dim.labels, strict=True):
            text = format_value(values[key])
            separator = "_" if label[-1:].isdigit() or is_digest(values[key]) else ""
            parts.append(f"{label}{separator}{text}")
    if seed is not None:
        parts.append(f"seed{seed}")
    return "-".join(parts) or "base"


def training_key(config: ml_collections.ConfigDict) -> str:
    """What a trial trains, independent of how its config spells it: the layers with every
    field filled in, and a pool layer of type 'none' without window, stride or padding (it
    ignores them)."""
    from cnn_jax.config import config_to_json, layer_dicts
    from cnn_jax.presets import complete

    layers = complete(layer_dicts(config))
    for layer in layers:
        if layer["type"] == "pool" and layer["pool_type"] == "none":
            layer.update(window=None, stride=None, padding=None)
    normalized = copy.deepcopy(config)
    normalized.model.preset, normalized.model.layers = "", layers
    return config_to_json(normalized)


def distinct(trials: list[Trial]) -> tuple[list[Trial], dict[str, str]]:
    """The trials that train something new, and {dropped id: id of the same earlier trial}:
    e.g. a sweep over pool type × window trains the network without pooling once, not once per
    window. A trial whose config cannot be planned is kept (it is recorded as invalid)."""
    kept, seen, duplicates = [], {}, {}
    for trial in trials:
        try:
            key = training_key(trial.config)
        except Exception:  # noqa: BLE001 - an impossible layer: plan_trial records why
            kept.append(trial)
            continue
        if key in seen:
            duplicates[trial.id] = seen[key]
        else:
            seen[key] = trial.id
            kept.append(trial)
    return kept, duplicates


def expand(sweep: Sweep) -> list[Trial]:
    """All trials, seeds outermost, then the dimensions in order (the first varies slowest)."""
    trials, seen = [], {}
    for seed in sweep.seeds:
        for points in itertools.product(*(dim.values for dim in sweep.dimensions)):
            values = {key: value for dim, point in zip(sweep.dimensions, points, strict=True)
                      for key, value in zip(dim.keys, point, strict=True)}
            config = copy.deepcopy(sweep.base)
            for key, value in values.items():
                set_value(config, key, value)
            config.seed = seed
            trial = Trial(trial_id(sweep, values, seed), trial_id(sweep, values, None),
                          values, seed, config)
            if trial.id in seen:
                raise SweepError(f"two trials get the id {trial.id!r}: {seen[trial.id]} and "
                                 f"{values}; give distinct values or config.labels")
            seen[trial.id] = values
            trials.append(trial)
    return trials
