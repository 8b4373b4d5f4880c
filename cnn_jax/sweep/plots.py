"""The sweep's PNG plots (matplotlib Agg), from the summary rows (mean ± std over seeds).

- accuracy against each swept dimension, one line per combination of the other dimensions (or,
  when there are more than `MAX_LINES`, one per value of the next dimension, averaged);
- accuracy against parameters and against multiply-adds;
- a heat map of mean accuracy for every pair of dimensions (averaged over the others).
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cnn_jax.sweep.grid import Dimension  # noqa: E402

MAX_LINES = 8
MAX_HEATMAPS = 6


def dimensions_of(manifest: dict[str, Any]) -> list[Dimension]:
    return [Dimension(tuple(d["keys"]), tuple(d["labels"]), tuple(tuple(v) for v in d["values"]))
            for d in manifest["dimensions"]]


def _label(dim: Dimension, row: dict[str, Any]) -> str:
    return dim.point_label(tuple(row[key] for key in dim.keys))


def _categories(dim: Dimension) -> list[str]:
    return list(dict.fromkeys(dim.point_label(v) for v in dim.values))


def _numeric(dim: Dimension) -> bool:
    return len(dim.keys) == 1 and all(
        isinstance(v[0], int | float) and not isinstance(v[0], bool) for v in dim.values)


def _accuracy(row: dict[str, Any]) -> float | None:
    value = row.get("test_accuracy_mean")
    return None if value is None else 100 * value


def _mean(values: list[float]) -> float:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else math.nan


def _filename(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def plot_dimension(dim: Dimension, others: list[Dimension], rows: list[dict], path: Path) -> None:
    categories = _categories(dim)
    numeric = _numeric(dim)
    xs = [v[0] for v in dim.values] if numeric else list(range(len(categories)))
    position = dict(zip(categories, xs, strict=True))
    combos = {tuple(_label(o, r) for o in others) for r in rows}
    marginal = len(combos) > MAX_LINES
    line_dims = others[:1] if marginal else others
    lines: dict[tuple, list[dict]] = {}
    for row in rows:
        lines.setdefault(tuple(_label(o, row) for o in line_dims), []).append(row)
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for key, members in sorted(lines.items()):
        points = []
        for category in categories:
            cell = [r for r in members if _label(dim, r) == category]
            mean = _mean([_accuracy(r) for r in cell])
            std = cell[0].get("test_accuracy_std") if len(cell) == 1 else None
            if not math.isnan(mean):
                points.append((position[category], mean, 100 * std if std else 0.0))
        if not points:
            continue
        name = ", ".join(f"{o.name}={v}" for o, v in zip(line_dims, key, strict=True))
        if marginal:
            name += " (mean over the rest)"
        x, y, err = zip(*points, strict=True)
        axes.errorbar(x, y, yerr=err, marker="o", capsize=3, label=name or "mean ± std")
    if numeric:
        low, high = min(xs), max(xs)
        if low > 0 and high / low >= 20:
            axes.set_xscale("log")
        axes.set_xticks(xs, categories)
    else:
        axes.set_xticks(xs, categories)
    axes.set_xlabel(f"{dim.name}  ({', '.join(dim.keys)})")
    axes.set_ylabel("test accuracy at best validation (%)")
    axes.set_title(f"accuracy against {dim.name}")
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_cost(rows: list[dict], key: str, label: str, path: Path) -> None:
    points = [(r[key], _accuracy(r), 100 * (r.get("test_accuracy_std") or 0.0), r["group"])
              for r in rows if _accuracy(r) is not None and r.get(key)]
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    if points:
        x, y, err, names = zip(*points, strict=True)
        axes.errorbar(x, y, yerr=err, fmt="o", capsize=3)
        if len(points) <= 20:
            for xi, yi, name in zip(x, y, names, strict=True):
                axes.annotate(name, (xi, yi), fontsize=6, xytext=(3, 3),
                              textcoords="offset points")
        if min(x) > 0 and max(x) / min(x) >= 10:
            axes.set_xscale("log")
    axes.set_xlabel(label)
    axes.set_ylabel("test accuracy at best validation (%)")
    axes.set_title(f"accuracy against {label}")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_heatmap(a: Dimension, b: Dimension, rows: list[dict], path: Path) -> None:
    rows_a, cols_b = _categories(a), _categories(b)
    grid = np.full((len(rows_a), len(cols_b)), np.nan)
    invalid = np.zeros_like(grid, dtype=bool)
    for i, j in itertools.product(range(len(rows_a)), range(len(cols_b))):
        cell = [r for r in rows if _label(a, r) == rows_a[i] and _label(b, r) == cols_b[j]]
        grid[i, j] = _mean([_accuracy(r) for r in cell])
        invalid[i, j] = bool(cell) and all(r.get("reason") and not r.get("done") for r in cell)
    figure, axes = plt.subplots(figsize=(1.2 + 0.9 * len(cols_b), 1.2 + 0.6 * len(rows_a)))
    image = axes.imshow(np.ma.masked_invalid(grid), cmap="viridis", aspect="auto")
    for i, j in itertools.product(range(len(rows_a)), range(len(cols_b))):
        text = "invalid" if invalid[i, j] else ("" if np.isnan(grid[i, j]) else
                                                f"{grid[i, j]:.1f}")
        axes.text(j, i, text, ha="center", va="center", fontsize=8,
                  color="black" if invalid[i, j] else "white")
    axes.set_xticks(range(len(cols_b)), cols_b)
    axes.set_yticks(range(len(rows_a)), rows_a)
    axes.set_xlabel(b.name)
    axes.set_ylabel(a.name)
    axes.set_title("mean test accuracy (%)", fontsize="medium")
    figure.colorbar(image, ax=axes)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def make_plots(manifest: dict[str, Any], summary: list[dict], folder: Path) -> list[tuple]:
    """Writes the PNGs into `folder`; returns [(title, path)]."""
    folder.mkdir(parents=True, exist_ok=True)
    dims = dimensions_of(manifest)
    made = []
    for dim in dims:
        path = folder / f"accuracy_vs_{_filename(dim.name)}.png"
        plot_dimension(dim, [d for d in dims if d is not dim], summary, path)
        made.append((f"Accuracy against {dim.name}", path))
    for key, label in (("params", "parameters"), ("macs", "multiply-adds per image")):
        path = folder / f"accuracy_vs_{key}.png"
        plot_cost(summary, key, label, path)
        made.append((f"Accuracy against {label}", path))
    for a, b in list(itertools.combinations(dims, 2))[:MAX_HEATMAPS]:
        path = folder / f"heatmap_{_filename(a.name)}_{_filename(b.name)}.png"
        plot_heatmap(a, b, summary, path)
        made.append((f"Heat map: {a.name} × {b.name}", path))
    return made
