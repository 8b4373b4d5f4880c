"""The explorer's data, from a sweep folder, a training run folder or a config (no training).

    sweep_data("sweeps/filter")   # axes, one entry per configuration (seeds pooled), digit
    run_data("runs/default")      # one configuration
    config_data(config)           # geometry only: layers and input shape, no results

A configuration is {id, point (its value index on each axis), layers (complete layer dicts, the
page computes their shapes), input_shape, status, reason, accuracy (mean and 95% CI over the
seeds that finished, `cnn_jax.sweep.stats.mean_ci`), params, macs, images_per_second, trials
(id, seed, status, test accuracy, learning curve), views (kernels, feature maps, effective
receptive fields of its first finished trial's best-validation checkpoint, or None)}.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from cnn_jax.config import layer_dicts, with_defaults
from cnn_jax.data.registry import dataset_info
from cnn_jax.errors import CnnJaxError, SweepError
from cnn_jax.explorer.views import digit_record, trained_views
from cnn_jax.presets import complete
from cnn_jax.sweep.keys import format_value, set_value
from cnn_jax.sweep.stats import mean_ci
from cnn_jax.train.logs import read_json, read_jsonl

CURVE_KEYS = ("epoch", "train_loss", "val_accuracy", "test_accuracy")


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def curve(run_dir: Path) -> list[list[float | None]]:
    """[[epoch, train_loss, val_accuracy, test_accuracy], ...] from run_dir/metrics.jsonl."""
    return [[_finite(record.get(key)) for key in CURVE_KEYS]
            for record in read_jsonl(run_dir / "metrics.jsonl") if record.get("kind") == "epoch"]


def accuracy(values: list[float | None]) -> dict[str, Any]:
    """{mean, low, high, n}: the 95% Student-t interval of the mean (None where undefined)."""
    finite = [v for v in (_finite(x) for x in values) if v is not None]
    mean, low, high = mean_ci(finite)
    return {"mean": _finite(mean), "low": _finite(low), "high": _finite(high), "n": len(finite)}


def test_digits(config: ml_collections.ConfigDict, count: int) -> tuple[np.ndarray, int] | None:
    """(the first `count` test images (N, H, W, C), the first one's label) of the config's data
    set, or None where the data set is not on this machine."""
    from cnn_jax.config import load_for_config

    config = copy.deepcopy(config)
    with config.unlocked():
        config.test_size = min(config.test_size or count, count)
        config.train_size, config.validation_size, config.expand = 1, 0, False  # test set only
    try:
        data = load_for_config(config)
    except CnnJaxError:
        return None
    if not len(data.test_images):
        return None
    return np.asarray(data.test_images[:count]), int(data.test_labels[0])


def configuration(config: ml_collections.ConfigDict, input_shape: list[int]) -> dict[str, Any]:
    """The geometry part of a configuration: complete layer dicts (values as JSON has them)."""
    return {"layers": complete(layer_dicts(config)), "input_shape": list(input_shape)}


def _input_shape(config: ml_collections.ConfigDict, manifest: dict[str, Any]) -> list[int]:
    if manifest.get("input_shape"):
        return list(manifest["input_shape"])
    info = dataset_info(config.dataset)
    if info is None or info.image_shape is None:
        raise SweepError(f"the image shape of data set {config.dataset!r} is unknown")
    return list(info.image_shape)


def _trial(directory: Path, entry: dict[str, Any]) -> dict[str, Any]:
    status = (read_json(directory / "status.json", {}) or {}).get("status", "pending")
    results = (read_json(directory / "results.json", {}) or {}) if status == "done" else {}
    return {"id": entry["id"], "seed": entry["seed"], "status": status,
            "test_accuracy": _finite(results.get("test_accuracy_at_best_val")),
            "best_epoch": _finite(results.get("best_epoch")),
            "images_per_second": _finite(results.get("images_per_second")),
            "params": results.get("params"), "macs": results.get("macs"),
            "curve": curve(directory) if status == "done" else []}


def _summarise(entry: dict[str, Any], trials: list[dict[str, Any]]) -> None:
    done = [t for t in trials if t["status"] == "done"]
    entry["trials"] = trials
    entry["accuracy"] = accuracy([t["test_accuracy"] for t in done])
    speeds = [t["images_per_second"] for t in done if t["images_per_second"] is not None]
    entry["images_per_second"] = float(np.mean(speeds)) if speeds else None
    counts: dict[str, int] = {}
    for t in trials:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    entry["status"] = ", ".join(f"{n} {s}" for s, n in counts.items())


def _views(directory: Path, digits: tuple[np.ndarray, int] | None) -> dict[str, Any] | None:
    if not (directory / "checkpoints").is_dir():
        return None
    try:
        return trained_views(directory, None if digits is None else digits[0])
    except CnnJaxError:
        return None


def sweep_data(workdir: str | Path, *, views: bool = True) -> dict[str, Any]:
    """The page's data for a sweep folder (sweep.json, trials/<id>/...)."""
    from cnn_jax.sweep.results import read_manifest
    from cnn_jax.sweep.trialdir import trial_dir

    workdir = Path(workdir)
    try:
        manifest = read_manifest(workdir)
    except FileNotFoundError as error:
        raise SweepError(str(error)) from None
    base = with_defaults(manifest["sweep_config"]["base"])
    input_shape = _input_shape(base, manifest)
    dimensions = manifest["dimensions"]
    digits = test_digits(base, 32) if views else None
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in manifest["trials"]:
        groups.setdefault(entry["group"], []).append(entry)
    configs = []
    for group, entries in groups.items():
        values = entries[0]["values"]
        config = copy.deepcopy(base)
        for key, value in values.items():
            set_value(config, key, value)
        point = [[list(v) for v in dim["values"]].index([values[k] for k in dim["keys"]])
                 for dim in dimensions]
        entry = {"id": group, "point": point, **configuration(config, input_shape)}
        trials = [_trial(trial_dir(workdir, e["id"]), e) for e in entries]
        _summarise(entry, trials)
        reason = next((r.get("reason") for r in (read_json(trial_dir(workdir, e["id"]) /
                       "status.json", {}) or {} for e in entries) if r.get("reason")), None)
        entry["reason"] = reason
        first = next((t for t in sorted(trials, key=lambda t: t["seed"])
                      if t["status"] == "done"), None)
        entry["views"] = (_views(trial_dir(workdir, first["id"]), digits)
                          if views and first else None)
        configs.append(entry)
    configs += _duplicates(manifest, configs)
    axes = [{"name": dim["name"], "keys": dim["keys"], "labels": dim["labels"],
             "values": [",".join(format_value(v) for v in point) for point in dim["values"]]}
            for dim in dimensions]
    return {"mode": "sweep", "title": manifest.get("name") or workdir.name, "axes": axes,
            "configs": configs, "input_shape": input_shape, "dataset": base.dataset,
            "digit": None if digits is None else digit_record(digits[0][0], digits[1])}


def _duplicates(manifest: dict[str, Any], configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries for the grid points the sweep did not train because they train the same network
    as another (`cnn_jax.sweep.grid.distinct`, e.g. pool 'none' at every window): the other's
    entry at their own point, so that every position of the controls shows something."""
    if not manifest.get("duplicates"):
        return []
    from cnn_jax.sweep.grid import load_sweep

    try:
        trials = {t.id: t for t in load_sweep(ml_collections.ConfigDict(
            manifest["sweep_config"])).trials()}
    except (CnnJaxError, KeyError, TypeError, ValueError):
        return []
    by_id = {c["id"]: c for c in configs}
    added: dict[str, dict[str, Any]] = {}
    for dropped, kept in manifest["duplicates"].items():
        trial, source = trials.get(dropped), trials.get(kept)
        if trial is None or source is None or source.group not in by_id \
                or trial.group in by_id or trial.group in added:
            continue
        point = [[list(v) for v in dim["values"]].index([trial.values[k] for k in dim["keys"]])
                 for dim in manifest["dimensions"]]
        added[trial.group] = {**by_id[source.group], "id": trial.group, "point": point,
                              "same_as": source.group}
    return list(added.values())


def run_data(run_dir: str | Path, *, views: bool = True) -> dict[str, Any]:
    """The page's data for one training run folder (config.json, metrics.jsonl, checkpoints/)."""
    from cnn_jax.inference import read_config, run_facts

    run_dir = Path(run_dir)
    config = read_config(run_dir)
    shape, _, _ = run_facts(run_dir, config)
    digits = test_digits(config, 32) if views else None
    entry = {"id": run_dir.name, "point": [], **configuration(config, list(shape))}
    results = read_json(run_dir / "results.json", {}) or {}
    trial = {"id": run_dir.name, "seed": config.seed,
             "status": "done" if results else "unfinished",
             "test_accuracy": _finite(results.get("test_accuracy_at_best_val")),
             "best_epoch": _finite(results.get("best_epoch")),
             "images_per_second": _finite(results.get("images_per_second")),
             "params": results.get("params"), "macs": results.get("macs"),
             "curve": curve(run_dir)}
    _summarise(entry, [trial])
    entry["reason"] = None
    entry["views"] = _views(run_dir, digits) if views else None
    return {"mode": "run", "title": run_dir.name, "axes": [], "configs": [entry],
            "input_shape": list(shape), "dataset": config.dataset,
            "digit": None if digits is None else digit_record(digits[0][0], digits[1])}


def config_data(config: ml_collections.ConfigDict, input_shape: list[int] | None = None
                ) -> dict[str, Any]:
    """The page's data for a training config, geometry only: the page's controls change every
    conv and pool layer's kernel, stride, padding and dilation."""
    if input_shape is None:
        info = dataset_info(config.dataset)
        if info is None or info.image_shape is None:
            raise SweepError(f"the image shape of data set {config.dataset!r} is known only once "
                             "it is loaded; give input_shape")
        input_shape = list(info.image_shape)
    digits = test_digits(config, 1)
    entry = {"id": "config", "point": [], **configuration(config, input_shape), "trials": [],
             "accuracy": accuracy([]), "images_per_second": None, "status": "not trained",
             "reason": None, "views": None}
    return {"mode": "config", "title": "config", "axes": [], "configs": [entry],
            "input_shape": list(input_shape), "dataset": config.dataset,
            "digit": None if digits is None else digit_record(digits[0][0], digits[1])}
