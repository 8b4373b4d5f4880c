"""Nielsen's chapter 6 table, row by row, with the book's protocol and our numbers beside it.

Protocol (all rows): softmax output with log-likelihood cost, plain SGD with mini-batches of 10,
training / validation (the last 10,000 training images) / test split, reported number = test
accuracy at the epoch of best validation accuracy (the book: the best of 3 runs). Weights are
initialised as in the book's `network3.py` (`init='nielsen'`), inputs are its k/256 pixels
(dataset `mnist`). Row 8 is a plurality vote of five networks of row 7, each voting with the
parameters of its best-validation epoch.

`Scale` shrinks the protocol (data, epochs, seeds, ensemble size) where the book's would take
too long; the table states every row's budget beside the book's. With `vmapped=True` (the
default on an accelerator) the independent runs of a row — its seeds, the ensemble's members —
train as one vmapped program (`cnn_jax.train.train_vmapped`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cnn_jax.config import DatasetCache, build_network, schema_defaults
from cnn_jax.train import train_and_evaluate, train_vmapped
from cnn_jax.train.checkpoints import Checkpointer
from cnn_jax.train.logs import read_jsonl, read_status
from cnn_jax.train.state import create_state


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of the book's table."""

    number: int
    network: str
    preset: str
    activation: str
    epochs: int
    learning_rate: float
    l2: float
    expand: bool
    book: float
    ensemble: int = 0  # > 0: plurality vote of this many networks of the previous row


ROWS = (
    Row(1, "FC100 → softmax", "nielsen_fc100", "sigmoid", 60, 0.1, 0.0, False, 0.9780),
    Row(2, "CP(20) → FC100 → softmax", "nielsen_cp1_fc100", "sigmoid", 60, 0.1, 0.0, False,
        0.9878),
    Row(3, "CP(20) → CP(40) → FC100 → softmax", "nielsen_cp2_fc100", "sigmoid", 60, 0.1, 0.0,
        False, 0.9906),
    Row(4, "as 3, ReLU, λ = 0.1", "nielsen_cp2_fc100_relu", "relu", 60, 0.03, 0.1, False, 0.9923),
    Row(5, "as 4, expanded data", "nielsen_cp2_fc100_relu", "relu", 60, 0.03, 0.1, True, 0.9937),
    Row(6, "as 5 + a second FC100", "nielsen_cp2_fc100x2", "relu", 60, 0.03, 0.1, True, 0.9943),
    Row(7, "CP(20) → CP(40) → FC1000 → FC1000, dropout 0.5", "nielsen_cp2_fc1000_dropout",
        "relu", 40, 0.03, 0.0, True, 0.9960),
    Row(8, "ensemble of {n} networks of row 7, plurality vote", "nielsen_cp2_fc1000_dropout",
        "relu", 40, 0.03, 0.0, True, 0.9967, ensemble=5),
)


def row_label(row: Row, scale: Scale) -> str:
    """The row's network as the table shows it (row 8 with the ensemble size that was run)."""
    size = scale.ensemble_size
    return row.network.format(n=size if size == row.ensemble else f"{size} (book: {row.ensemble})")


@dataclasses.dataclass(frozen=True)
class Scale:
    """How much of the protocol to run. `epochs=None` keeps the book's epochs per row."""

    dataset: str = "mnist"
    validation_size: int = 10_000
    train_size: int = 0
    test_size: int = 0
    epochs: int | None = None
    expanded_epochs: int | None = None  # for rows on the 5× expanded data (default: epochs)
    seeds: int = 1
    ensemble_size: int = 5
    data_dir: str = ""
    idx_dir: str = ""
    plots: bool = True  # each run's kernel, feature-map and curve figures (seconds per run)

    @property
    def label(self) -> str:
        parts = [self.dataset, f"validation {self.validation_size}"]
        if self.train_size:
            parts.append(f"train {self.train_size}")
        if self.test_size:
            parts.append(f"test {self.test_size}")
        base = "book epochs" if self.epochs is None else f"{self.epochs} epochs"
        if self.expanded_epochs is not None and self.expanded_epochs != self.epochs:
            base += f" ({self.expanded_epochs} on expanded data)"
        parts.append(base)
        return ", ".join(parts)


BOOK = Scale()
# Every row gets the same number of SGD steps (≈ 5,250, the book's first epoch): 15 epochs of
# 3,500 images, 3 of the 17,500 expanded ones. Sigmoid rows need about 8 epochs to leave the
# initial plateau at this size.
QUICK = Scale(dataset="mnist_5k", validation_size=500, train_size=0, epochs=15,
              expanded_epochs=3, seeds=1, ensemble_size=3)


def row_epochs(row: Row, scale: Scale) -> int:
    """The row's epochs at `scale`: expanded_epochs for rows on the expanded data, else epochs,
    else the book's."""
    if row.expand and scale.expanded_epochs is not None:
        return scale.expanded_epochs
    return row.epochs if scale.epochs is None else scale.epochs


def row_config(row: Row, scale: Scale, seed: int) -> ml_collections.ConfigDict:
    """The training config of one row at one scale and seed."""
    config = schema_defaults()
    config.seed = seed
    config.dataset = scale.dataset
    config.data_dir, config.idx_dir = scale.data_dir, scale.idx_dir
    config.validation_size, config.train_size = scale.validation_size, scale.train_size
    config.test_size = scale.test_size
    config.expand = row.expand
    config.model.preset = row.preset
    config.model.init = "nielsen"
    config.optimizer, config.batch_size = "sgd", 10
    config.learning_rate, config.l2 = row.learning_rate, row.l2
    config.num_epochs = row_epochs(row, scale)
    config.log_every_steps = 500
    config.plots = scale.plots
    return config


@dataclasses.dataclass
class RowResult:
    row: Row
    accuracies: list[float]
    seconds: float
    epochs: int
    run_dirs: list[Path]
    image_shape: tuple[int, int, int]


def run_row(row: Row, scale: Scale, workdir: Path, data: DatasetCache, *,
            vmapped: bool = False, overwrite: bool = False,
            trained: set[Path] | None = None) -> RowResult:
    """Trains the row's networks (one per seed; an ensemble row trains its members), one after
    the other or (`vmapped`) as one vmapped program; finished runs are not trained again.

    The row's time is the training time of its runs (plus the vote), also when resumed; runs
    trained together count once. `overwrite` starts the row's runs again, except those in
    `trained` (the runs this invocation trained already: row 8 votes with row 7's networks).
    """
    seeds = range(scale.ensemble_size) if row.ensemble else range(scale.seeds)
    folder = workdir / (f"row{row.number - 1}" if row.ensemble else f"row{row.number}")
    configs = [row_config(row, scale, seed) for seed in seeds]
    runs = [folder / f"seed{seed}" for seed in seeds]
    dataset = data.get(configs[0])
    trained = set() if trained is None else trained
    fresh = overwrite and not any(run in trained for run in runs)
    if vmapped:
        outcomes = train_vmapped(configs, runs, dataset=dataset, overwrite=fresh)
    else:
        outcomes = [train_and_evaluate(config, run, dataset=dataset,
                                       overwrite=overwrite and run not in trained)
                    for config, run in zip(configs, runs, strict=True)]
    trained.update(runs)
    accuracies = []
    for seed, results in zip(seeds, outcomes, strict=True):
        if results["status"] == "done" and results.get("test_accuracy_at_best_val") is not None:
            accuracies.append(results.get("test_accuracy_at_best_val"))
        else:
            print(f"row {row.number}, seed {seed}: {results['status']} ({results.get('reason')})")
    voting_started = time.perf_counter()
    if row.ensemble:
        members = [run for run in runs if read_status(run) == "done"]
        accuracies = [ensemble_accuracy(row, scale, members, dataset)] if members else []
    times = [training_seconds(run) for run in runs]
    seconds = max(times) if vmapped else sum(times)
    if row.ensemble:
        seconds += time.perf_counter() - voting_started
    return RowResult(row, accuracies, seconds, configs[0].num_epochs, runs, dataset.image_shape)


def training_seconds(run_dir: Path) -> float:
    """Wall time of a run's training epochs, from its metrics.jsonl (survives resumes)."""
    return sum(r.get("epoch_time_s", 0.0) for r in read_jsonl(run_dir / "metrics.jsonl")
               if r["kind"] == "epoch")


def best_params(config: ml_collections.ConfigDict, run_dir: Path, image_shape: tuple) -> Any:
    """The parameters of a run's checkpoint with the best validation accuracy."""
    network = build_network(config)
    template = create_state(network, config, image_shape, steps_per_epoch=1)
    checkpointer = Checkpointer(run_dir)
    try:
        step = checkpointer.best_step() or checkpointer.latest_step()
        return checkpointer.restore(template, step).params
    finally:
        checkpointer.close()


def plurality_vote(predictions: np.ndarray, classes: int) -> np.ndarray:
    """predictions (members, N) of class indices → (N,) the most voted class (ties: lowest)."""
    votes = np.zeros((predictions.shape[1], classes), np.int32)
    for member in predictions:
        votes[np.arange(len(member)), member] += 1
    return np.argmax(votes, axis=1)


def ensemble_accuracy(row: Row, scale: Scale, run_dirs: Sequence[Path], dataset) -> float:
    """Test accuracy of the plurality vote of the networks trained in `run_dirs`."""
    config = row_config(row, scale, 0)
    network = build_network(config)
    predict = jax.jit(lambda params, x: jnp.argmax(network.apply(params, x), axis=-1))
    predictions = []
    for run_dir in run_dirs:
        params = best_params(config, run_dir, dataset.image_shape)
        chunks = [predict(params, dataset.test_images[i:i + 1000])
                  for i in range(0, len(dataset.test_labels), 1000)]
        predictions.append(np.concatenate(jax.device_get(chunks)))
    voted = plurality_vote(np.stack(predictions), dataset.num_classes)
    return float(np.mean(voted == dataset.test_labels))


def run_table(workdir: str | Path, scale: Scale, rows: Sequence[int] | None = None,
              on_row: Callable[[RowResult], None] | None = None, *,
              vmapped: bool = False, overwrite: bool = False) -> list[RowResult]:
    """Runs the selected rows (default all) at `scale`; rerunning resumes where it stopped
    (`overwrite`: trains the selected rows again from scratch)."""
    workdir, data, trained = Path(workdir), DatasetCache(), set()
    selected = [row for row in ROWS if rows is None or row.number in rows]
    results = []
    for row in selected:
        result = run_row(row, scale, workdir, data, vmapped=vmapped, overwrite=overwrite,
                         trained=trained)
        results.append(result)
        if on_row is not None:
            on_row(result)
    return results
