"""The sweep's PNG plots, from the summary rows (one per configuration, mean ± std over the seeds
that finished: `cnn_jax.sweep.results.aggregate`).

- accuracy against each swept dimension, one series per combination of the other dimensions
  (or, when there are more than `MAX_LINES`, one per value of the next dimension, averaged over
  the rest): a line over a numeric axis, points side by side (no line) over a categorical one
  (pool type, padding); error bars are the 95% t interval over seeds (`stats.mean_ci`);
- accuracy against parameters and against multiply-adds;
- a heat map of mean accuracy for every pair of dimensions (averaged over the others).

Every averaged value says what it averages over (seeds, other axes) and is the mean over the
trials that finished. A point or cell whose trials did not all finish is marked (a hollow marker,
a hatched cell) with "finished/total trials"; one without a finished trial reads "n/a" (or
"invalid"), never a number. A sweep without any finished trial makes no plot. Figures are
`matplotlib.figure.Figure`s rendered by Agg (`cnn_jax.plots.save_figure`), never pyplot.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cnn_jax.plots import save_figure
from cnn_jax.sweep.grid import Dimension

MAX_LINES = 8
MAX_HEATMAPS = 6
ACCURACY_LABEL = "test accuracy at best validation (%)"


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


def _filename(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def _axis_name(dim: Dimension) -> str:
    return f"{dim.name}  ({', '.join(dim.keys)})"


@dataclasses.dataclass(frozen=True)
class Cell:
    """What one point or heat-map cell averages: the trials of its configurations."""

    mean: float  # test accuracy (%) averaged over the finished trials; NaN if none finished
    finished: int  # trials done with a test accuracy
    trials: int  # every trial of the cell (all seeds of all its configurations)
    invalid: int  # trials of impossible configurations (they never run)

    @property
    def complete(self) -> bool:
        return self.trials > 0 and self.finished == self.trials

    def text(self) -> str:
        """'97.1', '97.1\\n2/3 trials', 'n/a\\n0/3 trials', 'invalid' or 'n/a' (no trial)."""
        if not self.trials:
            return "n/a"
        if self.invalid == self.trials:
            return "invalid"
        lines = [f"{self.mean:.1f}" if self.finished else "n/a"]
        if not self.complete:
            lines.append(f"{self.finished}/{self.trials} trials")
        if self.invalid:
            lines.append(f"({self.invalid} invalid)")
        return "\n".join(lines)


def cell_of(rows: Sequence[dict[str, Any]]) -> Cell:
    """The summary rows (configurations) of a cell → its mean over every finished trial (each
    configuration's mean over its seeds, weighted by the seeds that finished) and its counts."""
    finished = trials = invalid = 0
    total = 0.0
    for row in rows:
        count, done = int(row.get("seeds") or 0), int(row.get("done") or 0)
        accuracy = _accuracy(row)
        trials += count
        if accuracy is not None and done:
            finished += done
            total += accuracy * done
        if row.get("reason") and not done:
            invalid += count
    return Cell(total / finished if finished else math.nan, finished, trials, invalid)


def _seed_count(rows: Sequence[dict[str, Any]], seeds: int | None) -> int:
    return seeds if seeds is not None else max((int(r.get("seeds") or 0) for r in rows),
                                               default=0)


def averaged_over(seeds: int, others: Sequence[Dimension] = ()) -> str:
    """'over 3 seeds' or 'over 3 seeds and the other axes (s, p)'."""
    text = f"over {seeds} seed{'' if seeds == 1 else 's'}"
    if others:
        text += f" and the other axes ({', '.join(o.name for o in others)})"
    return text


def _mark(axes: Any, x: float, y: float, cell: Cell, colour: Any) -> None:
    """A hollow marker and 'finished/total' at a point whose trials did not all finish (nothing
    where none finished: the legend names those points)."""
    if cell.complete or not cell.finished:
        return
    axes.plot([x], [y], "o", markerfacecolor="white", markeredgecolor=colour, zorder=3)
    axes.annotate(f"{cell.finished}/{cell.trials}", (x, y), xytext=(6, 5),
                  textcoords="offset points", fontsize=7, color=colour, zorder=4,
                  bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none",
                        "alpha": 0.8})


def _missing(dim: Dimension, categories: Sequence[str], cells: Sequence[Cell]) -> str:
    """' (k=9: invalid; k=7: n/a, 0/3 trials)' for the points of a line without a value."""
    parts = [f"{dim.name}={category}: " + ("invalid" if cell.invalid == cell.trials
                                           else f"n/a, 0/{cell.trials} trials")
             for category, cell in zip(categories, cells, strict=True) if not cell.finished]
    return f" ({'; '.join(parts)})" if parts else ""


def _ci_error(rows: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """(below, above) the mean: the 95% CI of a point that is one configuration, else (0, 0)."""
    if len(rows) != 1:
        return 0.0, 0.0
    row = rows[0]
    mean, low, high = (row.get(k) for k in ("test_accuracy_mean", "test_accuracy_ci_low",
                                            "test_accuracy_ci_high"))
    if mean is None or low is None or high is None:
        return 0.0, 0.0
    return 100 * (mean - low), 100 * (high - mean)


def _dimension_figure(dim: Dimension, others: list[Dimension], rows: list[dict], *,
                      seeds: int | None = None) -> Figure:
    """The figure of `plot_dimension` (tests read its title, lines and marks)."""
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
    figure = Figure(figsize=(7.6, 4.6), layout="constrained")
    axes = figure.subplots()
    incomplete = False
    series = sorted(lines.items())
    width = 0.7 / max(len(series), 1)  # categorical: the series side by side in each category
    for index, (key, members) in enumerate(series):
        points = []
        shift = 0.0 if numeric else (index - (len(series) - 1) / 2) * width
        for category in categories:
            cell_rows = [r for r in members if _label(dim, r) == category]
            if not cell_rows:
                continue
            points.append((position[category] + shift, cell_of(cell_rows), category,
                           _ci_error(cell_rows)))
        if not points:
            continue
        name = ", ".join(f"{o.name}={v}" for o, v in zip(line_dims, key, strict=True))
        x, cells, shown, errors = zip(*points, strict=True)
        y = [cell.mean for cell in cells]
        err = np.array(errors, dtype=float).T
        name = (name or "mean, 95% CI") + _missing(dim, shown, cells)
        container = axes.errorbar(x, y, yerr=err, marker="o", capsize=3, label=name,
                                  linestyle="-" if numeric else "none")
        colour = container.lines[0].get_color()
        for xi, yi, cell in zip(x, y, cells, strict=True):
            incomplete |= not cell.complete
            _mark(axes, xi, yi, cell, colour)
    axes.set_xticks(xs, categories)
    if numeric and min(xs) > 0 and max(xs) / min(xs) >= 20:
        axes.set_xscale("log")
        axes.set_xticks(xs, categories)
        axes.minorticks_off()
    axes.set_xlabel(_axis_name(dim))
    axes.set_ylabel(ACCURACY_LABEL)
    rest = others[len(line_dims):]
    count = _seed_count(rows, seeds)
    title = [f"accuracy against {dim.name}",
             f"each point: mean {averaged_over(count, rest)}"
             + (" (error bar: 95% CI over seeds)" if not marginal and count > 1 else "")]
    if incomplete:
        title.append("hollow: not every trial finished (finished/total trials)")
    axes.set_title("\n".join(title), fontsize=9)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        figure.legend(loc="outside right upper", fontsize="small")
    return figure


def plot_dimension(dim: Dimension, others: list[Dimension], rows: list[dict], path: Path, *,
                   seeds: int | None = None) -> Path:
    """Accuracy against `dim`, one line per combination of `others` (or per value of the first
    of them, averaged over the rest, past `MAX_LINES` lines); `seeds`: the sweep's seed count
    (default: the most seeds of a row)."""
    return save_figure(_dimension_figure(dim, others, rows, seeds=seeds), path)


def _cost_figure(rows: list[dict], key: str, label: str, *, seeds: int | None = None) -> Figure:
    figure = Figure(figsize=(7.2, 4.6), layout="constrained")
    axes = figure.subplots()
    points = [(r[key], _accuracy(r), _ci_error([r]), r["group"],
               cell_of([r])) for r in rows if _accuracy(r) is not None and r.get(key)]
    incomplete = False
    if points:
        x, y, err, names, cells = zip(*points, strict=True)
        container = axes.errorbar(x, y, yerr=np.array(err, dtype=float).T, fmt="o", capsize=3)
        colour = container.lines[0].get_color()
        for xi, yi, cell in zip(x, y, cells, strict=True):
            incomplete |= not cell.complete
            _mark(axes, xi, yi, cell, colour)
        if len(points) <= 20:
            for xi, yi, name in zip(x, y, names, strict=True):
                axes.annotate(name, (xi, yi), fontsize=6, xytext=(3, -9),
                              textcoords="offset points")
        if min(x) > 0 and max(x) / min(x) >= 10:
            axes.set_xscale("log")
    axes.set_xlabel(label)
    axes.set_ylabel(ACCURACY_LABEL)
    title = [f"accuracy against {label}",
             f"each point: one configuration, mean and 95% CI "
             f"{averaged_over(_seed_count(rows, seeds))}"]
    if incomplete:
        title.append("hollow: not every trial finished (finished/total trials)")
    axes.set_title("\n".join(title), fontsize=9)
    axes.grid(alpha=0.3)
    return figure


def plot_cost(rows: list[dict], key: str, label: str, path: Path, *,
              seeds: int | None = None) -> Path:
    """Accuracy against a cost column of the summary (`params`, `macs`), one point per
    configuration."""
    return save_figure(_cost_figure(rows, key, label, seeds=seeds), path)


def _heatmap_figure(a: Dimension, b: Dimension, rows: list[dict], *,
                    others: Sequence[Dimension] = (), seeds: int | None = None) -> Figure:
    """The figure of `plot_heatmap` (tests read its cell texts, hatches and title)."""
    rows_a, cols_b = _categories(a), _categories(b)
    cells = [[cell_of([r for r in rows if _label(a, r) == ra and _label(b, r) == cb])
              for cb in cols_b] for ra in rows_a]
    grid = np.array([[cell.mean for cell in line] for line in cells], dtype=float)
    finite = grid[np.isfinite(grid)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 100.0)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    figure = Figure(figsize=(max(5.0, 2.4 + 1.2 * len(cols_b)), 2.0 + 0.75 * len(rows_a)),
                    layout="constrained")
    axes = figure.subplots()
    axes.set_facecolor("0.93")  # cells without a value show the background, hatched
    image = axes.imshow(np.ma.masked_invalid(grid), cmap="viridis", aspect="auto", vmin=low,
                        vmax=high)
    incomplete = invalid = False
    for i, j in itertools.product(range(len(rows_a)), range(len(cols_b))):
        cell = cells[i][j]
        invalid |= cell.invalid > 0
        if not cell.complete:
            incomplete = True
            axes.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                                     edgecolor="0.55", linewidth=0))
        value = grid[i, j]
        if cell.complete:
            colour = "0.1" if image.norm(value) > 0.6 else "white"
            axes.text(j, i, cell.text(), ha="center", va="center", fontsize=8, color=colour,
                      fontweight="bold")
        else:  # on a light box over the hatching
            axes.text(j, i, cell.text(), ha="center", va="center", fontsize=8, color="0.1",
                      bbox={"boxstyle": "round,pad=0.25", "facecolor": "white",
                            "edgecolor": "none", "alpha": 0.8})
    axes.set_xticks(range(len(cols_b)), cols_b)
    axes.set_yticks(range(len(rows_a)), rows_a)
    axes.set_xlabel(_axis_name(b))
    axes.set_ylabel(_axis_name(a))
    title = ["mean test accuracy (%) at best validation",
             averaged_over(_seed_count(rows, seeds), others)]
    if incomplete:
        could = " or could run" if invalid else ""
        title.append(f"hatched: not every trial finished{could} (finished/total trials)")
    axes.set_title("\n".join(title), fontsize=9)
    figure.colorbar(image, ax=axes, label="mean test accuracy (%)")
    return figure


def plot_heatmap(a: Dimension, b: Dimension, rows: list[dict], path: Path, *,
                 others: Sequence[Dimension] = (), seeds: int | None = None) -> Path:
    """Mean test accuracy for every pair of values of `a` × `b`, averaged over the seeds and the
    `others` dimensions; cells whose trials did not all finish are hatched with their count."""
    return save_figure(_heatmap_figure(a, b, rows, others=others, seeds=seeds), path)


def make_plots(manifest: dict[str, Any], summary: list[dict], folder: Path) -> list[tuple]:
    """Writes the PNGs into `folder`; returns [(title, path)]."""
    if not any(_accuracy(row) is not None for row in summary):
        return []  # nothing finished (e.g. every configuration impossible): no empty plots
    folder.mkdir(parents=True, exist_ok=True)
    dims = dimensions_of(manifest)
    seeds = len(manifest.get("seeds") or []) or None
    made = []
    for dim in dims:
        path = folder / f"accuracy_vs_{_filename(dim.name)}.png"
        plot_dimension(dim, [d for d in dims if d is not dim], summary, path, seeds=seeds)
        made.append((f"Accuracy against {dim.name}", path))
    for key, label in (("params", "parameters"), ("macs", "multiply-adds per image")):
        path = folder / f"accuracy_vs_{key}.png"
        plot_cost(summary, key, label, path, seeds=seeds)
        made.append((f"Accuracy against {label}", path))
    pairs = [] if manifest.get("kind") == "search" else list(itertools.combinations(dims, 2))
    for a, b in pairs[:MAX_HEATMAPS]:  # a search's drawn values make no grid
        path = folder / f"heatmap_{_filename(a.name)}_{_filename(b.name)}.png"
        others = [d for d in dims if d is not a and d is not b]
        plot_heatmap(a, b, summary, path, others=others, seeds=seeds)
        made.append((f"Heat map: {a.name} × {b.name}", path))
    return made
