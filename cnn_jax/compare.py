"""Side by side comparison of training runs (lone runs or sweep trial folders).

    text = compare_runs(["runs/a", "runs/b"], out="compare/")   # Markdown; compare/curves.png

Each run folder holds config.json, metrics.jsonl (one `epoch` record per epoch) and, once
finished, results.json (with its provenance). The comparison has four parts:

1. the config fields that differ (layer lists field by field: `model.layers[0].kernel`);
2. the metrics side by side: test accuracy at the best validation epoch (Nielsen's protocol),
   final test accuracy, best validation accuracy and its epoch, final training loss, time;
3. learning curves overlaid (validation accuracy and training loss per epoch), a PNG;
4. the provenance fields that differ (git commit, package versions, device, XLA flags, host).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cnn_jax.errors import CnnJaxError
from cnn_jax.markdown import markdown_table
from cnn_jax.plots import save_figure
from cnn_jax.train.logs import read_json, read_jsonl
from cnn_jax.train.results import epoch_records

METRICS = (  # (results.json key, column label, as a percentage)
    ("test_accuracy_at_best_val", "test acc. at best val (%)", True),
    ("final_test_accuracy", "final test acc. (%)", True),
    ("best_val_accuracy", "best val acc. (%)", True),
    ("best_epoch", "best epoch", False),
    ("epochs", "epochs", False),
    ("final_train_loss", "final train loss", False),
    ("train_time_s", "train time (s)", False),
    ("status", "status", False),
)


class CompareError(CnnJaxError, ValueError):
    """A folder that is not a training run, or fewer than two runs."""


def read_run(folder: str | Path) -> dict[str, Any]:
    """{name, config, results, epochs} of a run folder; `CompareError` if it holds no
    config.json."""
    folder = Path(folder)
    config = read_json(folder / "config.json")
    if not folder.is_dir() or config is None:
        raise CompareError(f"{folder} is not a training run (no config.json): give run folders "
                           f"or sweep trial folders (SWEEP/trials/ID)")
    metrics = folder / "metrics.jsonl"
    return {"name": folder.name if folder.name not in ("", ".") else str(folder),
            "path": str(folder), "config": config,
            "results": read_json(folder / "results.json") or {},
            "epochs": epoch_records(read_jsonl(metrics)) if metrics.exists() else []}


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted key: leaf}: dicts by key, lists of dicts by index (`model.layers[0].kernel`)."""
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key in sorted(tree):
            out.update(flatten(tree[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(tree, list) and tree and all(isinstance(item, dict) for item in tree):
        out = {f"{prefix}.length": len(tree)}
        for index, item in enumerate(tree):
            out.update(flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix: tree}


def differing(trees: Sequence[Any]) -> list[tuple[str, list[Any]]]:
    """(key, values per tree) of the keys whose values are not all equal (a missing key is
    None)."""
    flat = [flatten(tree) for tree in trees]
    keys = sorted(set().union(*flat))
    rows = []
    for key in keys:
        values = [f.get(key) for f in flat]
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1:
            rows.append((key, values))
    return rows


def _cell(value: Any, percent: bool = False) -> str:
    if value is None:
        return "—"
    if percent and isinstance(value, int | float):
        return f"{100 * value:.2f}"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def curves_figure(runs: Sequence[dict[str, Any]]) -> Figure:
    """Validation accuracy (%) and training loss per epoch, one line per run."""
    figure = Figure(figsize=(10, 4))
    accuracy, loss = figure.subplots(1, 2)
    for run in runs:
        epochs = [r["epoch"] for r in run["epochs"]]
        accuracy.plot(epochs, [100 * r["val_accuracy"] for r in run["epochs"]], marker="o",
                      label=run["name"])
        loss.plot(epochs, [r["train_loss"] for r in run["epochs"]], marker="o", label=run["name"])
    accuracy.set(xlabel="epoch", ylabel="validation accuracy (%)", title="validation accuracy")
    loss.set(xlabel="epoch", ylabel="training loss", title="training loss", yscale="log")
    for axes in (accuracy, loss):
        axes.grid(alpha=0.3)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = accuracy.get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(len(runs), 3), fontsize="small")
    figure.tight_layout(rect=(0, 0.06 * ((len(runs) + 2) // 3 + 1), 1, 1))
    return figure


def compare_runs(folders: Sequence[str | Path], out: str | Path | None = None) -> str:
    """The Markdown comparison of the runs in `folders` (see the module docstring); with `out`,
    writes out/compare.md and out/curves.png. Raises `CompareError`."""
    if len(folders) < 2:
        raise CompareError(f"give at least two run folders to compare, got {len(folders)}")
    runs = [read_run(folder) for folder in folders]
    names = _unique_names(runs)
    header = ["", *names]
    sections = ["# Runs compared", "",
                markdown_table(["run", "folder"], [[n, r["path"]] for n, r in zip(
                    names, runs, strict=True)]), "", "## Config differences", ""]
    config_rows = differing([run["config"] for run in runs])
    sections.append(markdown_table(header, [[key, *map(_cell, values)]
                                            for key, values in config_rows])
                    if config_rows else "The configs are the same.")
    sections += ["", "## Metrics", "", markdown_table(header, [
        [label, *(_cell(run["results"].get(key), percent) for run in runs)]
        for key, label, percent in METRICS])]
    provenance_rows = differing([run["results"].get("provenance") or {} for run in runs])
    provenance_rows = [(key, values) for key, values in provenance_rows
                       if not key.startswith("command")]
    sections += ["", "## Provenance differences", "",
                 markdown_table(header, [[key, *map(_cell, values)]
                                         for key, values in provenance_rows])
                 if provenance_rows else "Same commit, versions, device and XLA flags."]
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for run, name in zip(runs, names, strict=True):
            run["name"] = name
        save_figure(curves_figure(runs), out / "curves.png")
        sections += ["", "## Learning curves", "", "![learning curves](curves.png)"]
    text = "\n".join(sections) + "\n"
    if out is not None:
        (Path(out) / "compare.md").write_text(text)
    return text


def _unique_names(runs: Sequence[dict[str, Any]]) -> list[str]:
    """Folder names; where two runs share one (two sweeps' trial ids, runs/a/run and
    runs/b/run), the shortest path endings that tell them apart."""
    paths = [Path(run["path"]).resolve().parts for run in runs]
    for depth in range(1, max(len(parts) for parts in paths) + 1):
        names = ["/".join(parts[-depth:]) for parts in paths]
        if len(set(names)) == len(names):
            return names
    return [run["path"] for run in runs]
