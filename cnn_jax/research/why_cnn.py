"""The course's "why CNNs" ablation: one idea at a time, same data and training budget.

    fully connected → local receptive fields (no sharing) → shared weights → + pooling

Each variant has one hidden layer of the course's kind feeding a softmax output. The first
layers' parameter counts have closed forms: a fully connected layer of n units on h·w inputs has
h·w·n + n; a locally connected layer with m maps of k×k on an h×w image has
(h−k+1)(w−k+1)·(k·k + 1)·m; a shared-weight layer (k·k + 1)·m — 20 maps of 5×5: 520, against
784·30 + 30 = 23,550 for 30 fully connected neurons.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from cnn_jax.config import build_network, load_for_config, schema_defaults
from cnn_jax.markdown import markdown_table
from cnn_jax.presets import ABLATION_STEPS, ablation
from cnn_jax.research.tables import percent
from cnn_jax.summary import shape_table
from cnn_jax.train import train_and_evaluate


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    idea: str
    layers: tuple[dict[str, Any], ...]


def variants(maps: int = 20, kernel: int = 5, fc_units: int = 30, activation: str = "sigmoid",
             classes: int = 10) -> tuple[Variant, ...]:
    """The four steps of the ablation (`cnn_jax.presets.ablation`)."""
    ideas = {
        "why_fc": ("fully connected", f"every pixel to each of {fc_units} neurons"),
        "why_local": ("local receptive fields", f"{maps} maps of {kernel}×{kernel} fields, "
                                                "unshared"),
        "why_shared": ("shared weights", f"{maps} maps of {kernel}×{kernel}, one kernel per map"),
        "why_pooled": ("+ 2×2 max pooling", "shared weights, then pooling"),
    }
    return tuple(
        Variant(*ideas[step], tuple(ablation(step, classes, maps=maps, kernel=kernel,
                                             fc_units=fc_units, activation=activation)))
        for step in ABLATION_STEPS)


def base(dataset: str = "mnist_5k", epochs: int = 5, train_size: int = 0, seed: int = 0):
    config = schema_defaults()
    config.dataset, config.validation_size, config.train_size = dataset, 500, train_size
    config.optimizer, config.learning_rate, config.batch_size = "sgd", 0.1, 10
    config.num_epochs, config.seed, config.log_every_steps = epochs, seed, 500
    return config


@dataclasses.dataclass
class VariantResult:
    variant: Variant
    results: dict[str, Any]
    first_layer_params: int
    seconds: float
    run_dir: Path


def run(workdir: str | Path, config, variant_list: tuple[Variant, ...]) -> list[VariantResult]:
    """Trains every variant with the same config except its layers."""
    workdir, dataset = Path(workdir), load_for_config(config)
    out = []
    for index, variant in enumerate(variant_list):
        variant_config = config.copy_and_resolve_references()
        variant_config.model.layers = [dict(layer) for layer in variant.layers]
        run_dir = workdir / f"variant{index + 1}"
        started = time.perf_counter()
        results = train_and_evaluate(variant_config, run_dir, dataset=dataset)
        rows = shape_table(build_network(variant_config), dataset.image_shape)
        out.append(VariantResult(variant, results, rows[0].params,
                                 time.perf_counter() - started, run_dir))
    return out


def table_markdown(results: list[VariantResult]) -> str:
    header = ["variant", "idea", "first-layer params", "params", "MACs", "test accuracy",
              "train time"]
    rows = [[r.variant.name, r.variant.idea, f"{r.first_layer_params:,}",
             f"{r.results['params']:,}", f"{r.results['macs']:,}",
             percent(r.results.get("test_accuracy_at_best_val")),
             f"{r.results.get('train_time_s', 0):.1f} s"] for r in results]
    return markdown_table(header, rows)


def _bars_figure(results: list[VariantResult]) -> Figure:
    """The two bar charts of `plot_bars` as a Figure (tests read its axes and bar labels)."""
    import textwrap

    figure = Figure(figsize=(10, 4.2), layout="constrained")
    accuracy_axes, params_axes = figure.subplots(1, 2)
    names = [textwrap.fill(r.variant.name, 14) for r in results]
    accuracy = [r.results.get("test_accuracy_at_best_val") for r in results]
    bars = accuracy_axes.bar(names, [100 * (a or 0.0) for a in accuracy], color="tab:blue")
    accuracy_axes.bar_label(bars, labels=["n/a" if a is None else f"{100 * a:.2f}%"
                                          for a in accuracy], fontsize=8, padding=2)
    accuracy_axes.set_ylim(0, 108)  # from 0, honest bar lengths; room above 100% for labels
    accuracy_axes.set_yticks(range(0, 101, 20))
    accuracy_axes.set_ylabel("test accuracy (%), axis from 0")
    accuracy_axes.set_title("test accuracy at the best-validation epoch", fontsize=10)
    params = [r.results["params"] for r in results]
    bars = params_axes.bar(names, params, color="tab:orange")
    params_axes.bar_label(bars, labels=[f"{p:,}" for p in params], fontsize=8, padding=2)
    params_axes.set_yscale("log")
    params_axes.set_ylim(1, max(params, default=10) * 4)  # bars from 1; room for the labels
    params_axes.set_ylabel("parameters (log scale, axis from 1)")
    params_axes.set_title("parameters of the whole network", fontsize=10)
    for axes in (accuracy_axes, params_axes):
        axes.tick_params(axis="x", labelsize=8)
        axes.grid(axis="y", alpha=0.3)
        axes.set_axisbelow(True)
    return figure


def plot_bars(results: list[VariantResult], path: Path) -> Path:
    """Test accuracy (axis from 0, each bar labelled with its value) and parameter count (log
    scale, labelled) per variant."""
    from cnn_jax.plots import save_figure

    return save_figure(_bars_figure(results), path)
