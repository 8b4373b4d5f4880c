"""A run's results: the epoch records of its log, Nielsen's selection of the reported epoch,
results.json's summary, and the end of a finished run (its plots and closing line)."""

from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import jax

from cnn_jax.network import Network
from cnn_jax.train.inputs import EvalSet
from cnn_jax.train.logs import TEMP_SUFFIX, read_json, read_status
from cnn_jax.train.progress import plural
from cnn_jax.train.state import TrainState


def epoch_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("kind") == "epoch"]


def finished_results(workdir: Path, config: Any) -> dict[str, Any] | None:
    """results.json of a run in `workdir` that is done with all of `config.num_epochs`; else
    None (nothing there, stopped early, or to be extended by more epochs)."""
    results = read_json(workdir / "results.json")
    if read_status(workdir) == "done" and isinstance(results, dict) \
            and results.get("status") == "done" \
            and results.get("epochs", 0) >= config.num_epochs:
        return results
    return None


def selection_score(record: dict[str, Any]) -> float:
    """What picks the best checkpoint: validation accuracy, or the epoch without validation."""
    value = record.get("val_accuracy")
    return float(record["epoch"]) if value is None else float(value)


def none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


def summarize(history: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Nielsen's protocol: the test accuracy at the epoch of best validation accuracy (the
    earliest on ties), next to the final test accuracy. Without a validation split no epoch is
    chosen on test data: the final epoch is reported."""
    results: dict[str, Any] = {"epochs": len(history), **extra}
    if not history:
        return results
    has_val = any(r.get("val_accuracy") is not None for r in history)
    if has_val:
        best = max(history, key=lambda r: (selection_score(r), -r["epoch"]))
        selection = "best validation accuracy"
    else:
        best, selection = history[-1], "final epoch (no validation split)"
    final = history[-1]
    results.update(
        selection=selection, best_epoch=best["epoch"], best_val_accuracy=best["val_accuracy"],
        test_accuracy_at_best_val=best["test_accuracy"],
        final_test_accuracy=final["test_accuracy"], final_val_accuracy=final["val_accuracy"],
        final_train_loss=final["train_loss"], final_train_accuracy=final["train_accuracy"],
        images_per_second=final["images_per_second"],
        train_time_s=sum(r["epoch_time_s"] for r in history),
    )
    return results


def finish_run(workdir: Path, config: Any, network: Network, state: TrainState, test: EvalSet,
               history: list[dict[str, Any]], results: dict[str, Any]) -> None:
    """The plots (if `config.plots`) and the closing line of a run that trained every epoch; a
    failed plot is a warning in `results`, never a lost run."""
    if config.plots:
        try:
            results["plots"] = _plot(workdir, network, state, test, history)
        except Exception as error:  # a figure must never cost a finished run its results
            results["plots_error"] = f"{type(error).__name__}: {error}"
            print(f"warning: plots failed: {results['plots_error']}", file=sys.stderr)
    test, final = results.get("test_accuracy_at_best_val"), results.get("final_test_accuracy")
    print(
        f"done: {plural(results['epochs'], 'epoch')}, test accuracy {_fmt(test)} at epoch "
        f"{results.get('best_epoch')} ({results.get('selection')}; final {_fmt(final)}); "
        f"train {results.get('train_time_s', 0.0):.1f} s, compile "
        f"{results['compile_time_s']:.1f} s, {results.get('images_per_second', 0):,.0f} img/s; "
        f"workdir {workdir}"
    )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _plot(workdir: Path, network: Network, state: TrainState, test: EvalSet,
          history: list[dict[str, Any]]) -> list[str]:
    """Kernels, feature maps and learning curves as PNGs in the workdir, each renamed into place
    from a temp folder so that a kill never leaves a half-written image."""
    from cnn_jax import plots

    params = jax.device_get(state.params)
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".plots.", suffix=TEMP_SUFFIX) as temp:
        temp = Path(temp)
        plots.plot_network_kernels(network, params, temp)
        if test.size:
            image = jax.device_get(test.images[0])
            label = int(jax.device_get(test.labels[0]))
            plots.plot_feature_maps_for(network, params, image, temp / "feature_maps.png",
                                        label=label)
        plots.plot_learning_curves(history, temp / "learning_curves.png")
        names = sorted(path.name for path in temp.glob("*.png"))
        for name in names:
            os.replace(temp / name, workdir / name)
    return names
