"""The sweep's tables, rebuilt from the files at any time (also while the sweep runs).

`results.csv` / `results.jsonl`: one row per trial with its swept values, each layer's output size
(`<layer>_out`, e.g. conv1_out = 24x24x20), parameters, multiply-adds, receptive field, test
accuracy at the epoch of best validation accuracy, times, throughput, compilations and status.
`summary.csv`: one row per configuration over the seeds that finished, ranked by validation
accuracy (the best validation accuracy of each trial; the test accuracy at that epoch beside it,
never used to choose): n, mean, std and 95% t interval of both; then the paired comparison with
the best configuration and with the sweep config's `report_baseline` on their common seeds
(mean difference, paired t-test p, Holm-corrected p, Wilcoxon p where n ≥ 6), `tied_best`
(not distinguishable from the best) and the seeds a comparison would need to decide
(`cnn_jax.sweep.stats`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from cnn_jax import provenance
from cnn_jax.sweep import stats, trialdir
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
    status = trialdir.status_of(directory, status_record)  # 'dead': running, process gone
    row: dict[str, Any] = {"trial": entry["id"], "group": entry["group"], "seed": entry["seed"],
                           "status": status}
    row.update({key: entry["values"].get(key) for key in keys})
    for layer in info.get("layers", []):
        row[f"{layer['name']}_out"] = size_text(layer["output_shape"])
    row.update(params=info.get("params"), macs=info.get("macs"),
               receptive_field=info.get("receptive_field"), architecture=info.get("architecture"))
    results = read_json(directory / "results.json", {}) or {}
    if status not in ("done", "diverged", "interrupted", "pruned"):
        results = {}
    row["test_accuracy"] = results.get("test_accuracy_at_best_val")
    row.update({m: results.get(m) for m in METRICS if m != "test_accuracy"})
    row.update(provenance.flat(results.get("provenance")))
    runs = info.get("runs", [])
    row["compiles"] = next((r["compiles"] for r in reversed(runs) if "compiles" in r), None)
    row["attempts"] = len(runs)
    row["reason"] = status_record.get("reason") or info.get("reason")
    if status == trialdir.DEAD:
        row["reason"] = trialdir.dead_reason(directory)
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
    values = _finite(values)
    if not values:
        return None, None
    return stats.mean_ci(values)[0], (stats.std(values) if len(values) > 1 else None)


def _finite(values: list[Any]) -> list[float]:
    return [v for v in values if isinstance(v, int | float) and math.isfinite(v)]


def _none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


RANKED_BY = "best_val_accuracy"  # what ranks and selects configurations: never test accuracy


def aggregate(rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """One row per configuration (group): n, mean, std and 95% CI over its finished seeds,
    ranked by mean validation accuracy (`RANKED_BY`), best first."""
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
            values = _finite([r.get(metric) for r in done])
            mean, std = mean_std(values)
            summary[f"{metric}_mean"], summary[f"{metric}_std"] = mean, std
            if metric in ("test_accuracy", RANKED_BY):
                summary[f"{metric}_n"] = len(values)
                _, low, high = stats.mean_ci(values) if values else (None, None, None)
                summary[f"{metric}_ci_low"] = _none(low)
                summary[f"{metric}_ci_high"] = _none(high)
        summary["reason"] = next((r["reason"] for r in members if r["status"] == "invalid"), None)
        out.append(summary)
    return sorted(out, key=lambda s: -(s[f"{RANKED_BY}_mean"] or -1.0))


def scores_by_group(rows: list[dict[str, Any]], metric: str = RANKED_BY
                    ) -> dict[str, dict[int, float]]:
    """{configuration: {seed: metric}} over the finished trials."""
    out: dict[str, dict[int, float]] = {}
    for row in rows:
        value = row.get(metric)
        if row["status"] == "done" and isinstance(value, int | float) and math.isfinite(value):
            out.setdefault(row["group"], {})[row["seed"]] = float(value)
    return out


def compare_groups(rows: list[dict[str, Any]], baseline: str | None = None
                   ) -> dict[str, dict[str, Any]]:
    """`stats.compare` of the configurations on validation accuracy (see the module docstring)."""
    return stats.compare(scores_by_group(rows), baseline=baseline)


def annotate(summary: list[dict[str, Any]], comparison: dict[str, dict[str, Any]]) -> None:
    """Adds the comparison columns of summary.csv to the summary rows (in place)."""
    for row in summary:
        result = comparison.get(row["group"], {})
        row["rank"] = result.get("rank")
        row["tied_best"] = result.get("tied")
        for family in ("vs_best", "vs_baseline"):
            test = result.get(family) or {}
            row[f"n_{family}"] = test.get("n")
            row[f"diff_{family}"] = _none(test.get("diff"))
            row[f"diff_{family}_ci_low"] = _none(test.get("diff_low"))
            row[f"diff_{family}_ci_high"] = _none(test.get("diff_high"))
            row[f"p_{family}"] = _none(test.get("p"))
            row[f"p_holm_{family}"] = _none(test.get("p_holm"))
            row[f"p_wilcoxon_{family}"] = test.get("p_wilcoxon")
            row[f"seeds_needed_{family}"] = test.get("seeds_needed")


def baseline_of(manifest: dict[str, Any]) -> str | None:
    """The sweep config's `report_baseline` (a configuration, e.g. 'k5'), if any."""
    value = (manifest.get("sweep_config") or {}).get("report_baseline")
    return str(value) if value not in (None, "") else None


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
    annotate(summary, compare_groups(rows, baseline_of(manifest)))
    atomic_write_text(workdir / "results.csv", _csv(rows))
    atomic_write_text(workdir / "results.jsonl",
                      "".join(json.dumps(row, default=str) + "\n" for row in rows))
    atomic_write_text(workdir / "summary.csv", _csv(summary) if summary else "")
    return manifest, rows, summary
