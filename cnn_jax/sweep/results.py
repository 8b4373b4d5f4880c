"""The sweep's tables, rebuilt from the files at any time (also while the sweep runs).

`results.csv` / `results.jsonl`: one row per trial with its swept values, each layer's output size
(`<layer>_out`, e.g. conv1_out = 24x24x20), parameters, multiply-adds, receptive field, test
accuracy at the epoch of best validation accuracy, times, throughput, compilations and status.
`summary.csv`: one row per configuration, mean ± std over the seeds that finished.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path
from typing import Any

from cnn_jax import provenance
from cnn_jax.sweep import trialdir
from cnn_jax.train.logs import atomic_write_text, read_json

METRICS = ("test_accuracy", "best_val_accuracy", "final_test_accuracy", "best_epoch", "epochs",
           "train_time_s", "compile_time_s", "images_per_second", "vmapped_models",
           "model_images_per_second")
AGGREGATED = ("test_accuracy", "best_val_accuracy", "train_time_s", "compile_time_s",
              "images_per_second")


def read_manifest(workdir: str | Path) -> dict[str, Any]:
    manifest = read_json(Path(workdir) / "sweep.json")
    if manifest is None:
        raise FileNotFoundError(f"{workdir}/sweep.json not found: not a sweep workdir")
    return manifest


def size_text(shape: list[int]) -> str:
    return "x".join(str(d) for d in shape)


def trial_row(workdir: Path, entry: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    directory = trialdir.trial_dir(workdir, entry["id"])
    info = read_json(directory / "trial.json", {})
    status_record = read_json(directory / "status.json", {}) or {}
    status = status_record.get("status", "pending")
    row: dict[str, Any] = {"trial": entry["id"], "group": entry["group"], "seed": entry["seed"],
                           "status": status}
    row.update({key: entry["values"].get(key) for key in keys})
    for layer in info.get("layers", []):
        row[f"{layer['name']}_out"] = size_text(layer["output_shape"])
    row.update(params=info.get("params"), macs=info.get("macs"),
               receptive_field=info.get("receptive_field"), architecture=info.get("architecture"))
    results = read_json(directory / "results.json", {}) or {}
    if status not in ("done", "diverged", "interrupted"):
        results = {}
    row["test_accuracy"] = results.get("test_accuracy_at_best_val")
    row.update({m: results.get(m) for m in METRICS if m != "test_accuracy"})
    row.update(provenance.flat(results.get("provenance")))
    runs = info.get("runs", [])
    row["compiles"] = next((r["compiles"] for r in reversed(runs) if "compiles" in r), None)
    row["attempts"] = len(runs)
    row["reason"] = status_record.get("reason") or info.get("reason")
    return row


def collect(workdir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(manifest, one row per trial in grid order)."""
    workdir = Path(workdir)
    manifest = read_manifest(workdir)
    keys = [key for dim in manifest["dimensions"] for key in dim["keys"]]
    return manifest, [trial_row(workdir, entry, keys) for entry in manifest["trials"]]


def columns_of(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    tail = [c for c in ("compiles", "attempts", "reason", "git_commit", "git_dirty",
                        "jax_version", "device", "command") if c in columns]
    return [c for c in columns if c not in tail] + tail


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def aggregate(rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """One row per configuration (group): mean and std over its finished seeds, best first."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["group"], []).append(row)
    out = []
    for group, members in groups.items():
        done = [r for r in members if r["status"] == "done"]
        first = members[0]
        summary = {"group": group, **{k: first.get(k) for k in keys}}
        summary.update({k: v for k, v in first.items() if k.endswith("_out")})
        summary.update(params=first["params"], macs=first["macs"],
                       receptive_field=first["receptive_field"],
                       architecture=first["architecture"], seeds=len(members), done=len(done),
                       statuses=_count(r["status"] for r in members))
        for metric in AGGREGATED:
            mean, std = mean_std([r.get(metric) for r in done])
            summary[f"{metric}_mean"], summary[f"{metric}_std"] = mean, std
        summary["reason"] = next((r["reason"] for r in members if r["status"] == "invalid"), None)
        out.append(summary)
    return sorted(out, key=lambda s: -(s["test_accuracy_mean"] or -1.0))


def _count(statuses) -> str:
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns_of(rows), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()


def write_results(workdir: str | Path) -> tuple[dict[str, Any], list[dict], list[dict]]:
    """Rewrites results.csv, results.jsonl and summary.csv (atomically); returns
    (manifest, trial rows, summary rows)."""
    workdir = Path(workdir)
    manifest, rows = collect(workdir)
    keys = [key for dim in manifest["dimensions"] for key in dim["keys"]]
    summary = aggregate(rows, keys)
    atomic_write_text(workdir / "results.csv", _csv(rows))
    atomic_write_text(workdir / "results.jsonl",
                      "".join(json.dumps(row, default=str) + "\n" for row in rows))
    atomic_write_text(workdir / "summary.csv", _csv(summary) if summary else "")
    return manifest, rows, summary
