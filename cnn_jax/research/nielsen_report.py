"""The chapter 6 table in Markdown, its learning curves and the best network's kernels."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from cnn_jax import plots
from cnn_jax.config import build_network
from cnn_jax.markdown import markdown_table
from cnn_jax.research.nielsen import (
    RowResult,
    Scale,
    best_params,
    row_config,
    row_label,
)
from cnn_jax.research.tables import mean_std, percent, percent_mean_std
from cnn_jax.train.logs import read_jsonl


def table_markdown(results: list[RowResult], scale: Scale, device: str) -> str:
    """The book's accuracy beside ours: mean ± std over the row's runs and the best of them (the
    book reports the best of 3), the row's budget beside the book's, time and device."""
    header = ["#", "network", "book", "ours: mean ± std", "ours: best", "runs",
              "epochs (book)", "time", "device"]
    rows = [
        [r.row.number, row_label(r.row, scale), percent(r.row.book),
         percent_mean_std(r.accuracies), percent(max(r.accuracies, default=None)),
         len(r.run_dirs), f"{r.epochs} ({r.row.epochs})", _duration(r.seconds), device]
        for r in results
    ]
    note = "" if scale.dataset in ("mnist", "mnist_5k") else (
        " The book's numbers are for MNIST; this table is on another data set.")
    return (f"Scale: {scale.label}.{note} \"best\" is the best run of the row, the number the "
            f"book's (the best of 3 runs) compares with; an ensemble row has one vote.\n\n"
            + markdown_table(header, rows))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _curves_figure(results: list[RowResult]) -> Figure:
    """The figure of `plot_curves` (tests read its lines, axis labels and legend)."""
    from matplotlib.ticker import EngFormatter

    from cnn_jax.train.logs import read_json

    figure = Figure(figsize=(8, 5.6), layout="constrained")
    axes = figure.subplots()
    batch_sizes = set()
    for result in results:
        if result.row.ensemble or not result.run_dirs:
            continue
        run_dir = result.run_dirs[0]
        batch_size = (read_json(run_dir / "config.json", {}) or {}).get("batch_size")
        history = [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["kind"] == "epoch"]
        if not batch_size or not history:
            continue
        batch_sizes.add(batch_size)
        validated = any(r.get("val_accuracy") is not None for r in history)
        key = "val_accuracy" if validated else "test_accuracy"
        points = [(r["step"] * batch_size, 100 * r[key]) for r in history
                  if r.get(key) is not None]
        if not points:
            continue
        expanded = result.row.expand and "expanded" not in result.row.network
        data = " (5× expanded data)" if expanded else ""
        split = "" if validated else " [test: no validation split]"
        images, accuracy = zip(*points, strict=True)
        axes.plot(images, accuracy, marker="o", markersize=2.5, linewidth=1.2,
                  linestyle="-" if validated else "--",
                  label=f"row {result.row.number}: {result.row.network}{data}{split}")
    per_step = (f"SGD steps × batch size {next(iter(batch_sizes))}" if len(batch_sizes) == 1
                else "SGD steps × each run's batch size")
    axes.set_xlabel(f"training images seen ({per_step})")
    axes.xaxis.set_major_formatter(EngFormatter(sep=""))
    axes.set_ylabel("validation accuracy (%)")
    axes.set_title("validation accuracy against images seen (first run of each row)",
                   fontsize=10)
    axes.grid(alpha=0.3)
    if axes.get_lines():
        figure.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    else:
        axes.text(0.5, 0.5, "no epoch records", ha="center", va="center",
                  transform=axes.transAxes)
    return figure


def plot_curves(results: list[RowResult], path: Path) -> Path:
    """Validation accuracy (%) of every single-network row (its first run) against the training
    images seen (steps × batch size), so that rows on the 5× expanded data, whose epochs are 5
    times longer, share one axis with the others; a run without validation plots its test
    accuracy, dashed, and says so in the legend."""
    return plots.save_figure(_curves_figure(results), path)


def plot_best_kernels(results: list[RowResult], scale: Scale, workdir: Path) -> list[Path]:
    """Kernel grids of the best single network (highest mean accuracy, non-ensemble row)."""
    candidates = [r for r in results if not r.row.ensemble and r.accuracies]
    if not candidates:
        return []
    best = max(candidates, key=lambda r: mean_std(r.accuracies)[0])
    config = row_config(best.row, scale, 0)
    network = build_network(config)
    params = best_params(config, best.run_dirs[0], best.image_shape)
    return plots.plot_network_kernels(network, params, workdir / f"kernels_row{best.row.number}")
