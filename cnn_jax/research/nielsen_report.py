"""The chapter 6 table in Markdown, its learning curves and the best network's kernels."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from cnn_jax import plots  # noqa: E402
from cnn_jax.config import build_network  # noqa: E402
from cnn_jax.markdown import markdown_table  # noqa: E402
from cnn_jax.research.nielsen import (  # noqa: E402
    RowResult,
    Scale,
    best_params,
    row_config,
    row_label,
)
from cnn_jax.research.tables import mean_std, percent, percent_mean_std  # noqa: E402
from cnn_jax.train.logs import read_jsonl  # noqa: E402


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


def plot_curves(results: list[RowResult], path: Path) -> Path:
    """Validation accuracy per epoch for every row (first seed)."""
    figure = Figure(figsize=(7, 4.5))
    axes = figure.subplots()
    for result in results:
        if result.row.ensemble:
            continue
        history = [r for r in read_jsonl(result.run_dirs[0] / "metrics.jsonl")
                   if r["kind"] == "epoch"]
        accuracy = [r["val_accuracy"] if r["val_accuracy"] is not None else r["test_accuracy"]
                    for r in history]
        axes.plot([r["epoch"] for r in history], accuracy, marker="o",
                  label=f"{result.row.number}: {result.row.network}")
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation accuracy")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


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
