"""Reproduces Nielsen's chapter 6 table on MNIST: the book's test accuracy beside ours, row by row.

    python -m experiments.nielsen_ch6 --workdir=runs/nielsen                # the book's protocol
    python -m experiments.nielsen_ch6 --workdir=runs/nielsen --rows=5,6,7,8 --expanded_epochs=5
    python -m experiments.nielsen_ch6 --workdir=runs/nielsen_quick --quick  # minutes, 2 CPUs

The book's protocol (default): MNIST with the book's split (dataset `mnist`), mini-batches of 10,
the book's η, λ and epochs per row (60; 40 for the dropout rows): hours on a CPU, minutes on a
GPU, where each row's seeds and the ensemble's members train as one vmapped program
(`--executor=auto`). Every run lives in workdir/row<N>/seed<S>; rerunning the same command
resumes where it stopped (a finished run is not trained again; `--overwrite` starts the selected
rows again). Writes workdir/results.md (the table, rewritten after every row), curves.png and the
best network's kernel grids. Measured tables: docs/results.md.

--quick: the embedded 5,000 digits (3,500 training images), 15 epochs (3 on the expanded data:
the same number of steps), an ensemble of 3.
"""

import dataclasses
from pathlib import Path

import jax
from absl import flags

from cnn_jax import cli
from cnn_jax.compilation_cache import enable_compilation_cache
from cnn_jax.config import validate_config
from cnn_jax.data import dataset_info, dataset_names
from cnn_jax.provenance import describe_devices
from cnn_jax.research import nielsen
from cnn_jax.research.nielsen_report import plot_best_kernels, plot_curves, table_markdown
from cnn_jax.train.logs import atomic_write_text

WORKDIR = flags.DEFINE_string("workdir", "runs/nielsen", "Output folder.")
DATASET = flags.DEFINE_string("dataset", "mnist", "mnist (the book's split), mnist_5k, "
                              "fashion_mnist_debian, idx, synthetic, tfds:<name>.")
QUICK = flags.DEFINE_bool("quick", False, "Small scale on the embedded MNIST set (minutes).")
ROWS = flags.DEFINE_list("rows", [], "Rows to run, from 1 to 8 (default all), e.g. 1,2,3.")
SEEDS = flags.DEFINE_integer("seeds", None, "Runs per row (mean ± std and best).", lower_bound=1)
EPOCHS = flags.DEFINE_integer("epochs", None, "Epochs for every row (default: the book's).",
                              lower_bound=1)
EXPANDED_EPOCHS = flags.DEFINE_integer(
    "expanded_epochs", None, "Epochs for the rows on expanded data (default: --epochs, else the "
    "book's).", lower_bound=1)
TRAIN_SIZE = flags.DEFINE_integer("train_size", None, "Training images (0: all).", lower_bound=0)
ENSEMBLE = flags.DEFINE_integer("ensemble_size", None, "Networks voting in row 8.", lower_bound=1)
EXECUTOR = flags.DEFINE_enum("executor", "auto", ["auto", "local", "vmap"],
                             "A row's runs one by one ('local') or as one vmapped program "
                             "('vmap'); 'auto': vmap on GPU/TPU, local on CPU.")
OVERWRITE = flags.DEFINE_bool("overwrite", False, "Train the selected rows again from scratch.")
DATA_DIR = flags.DEFINE_string("data_dir", "", "TFDS data folder.")
IDX_DIR = flags.DEFINE_string("idx_dir", "", "IDX folder for --dataset=idx.")


def selected_rows() -> list[int] | None:
    """--rows as row numbers, or None for all; a bad value is a usage error."""
    numbers = [row.number for row in nielsen.ROWS]
    try:
        rows = [int(text) for text in ROWS.value]
    except ValueError:
        cli.fail(f"--rows={','.join(ROWS.value)} is not allowed: row numbers from 1 to 8, "
                 "e.g. --rows=1,2,3")
    bad = [row for row in rows if row not in numbers]
    if bad:
        cli.fail(f"--rows={','.join(ROWS.value)} is not allowed: no row {bad[0]}; the table "
                 f"has rows {numbers[0]} to {numbers[-1]}")
    return rows or None


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        cli.fail(f"unexpected arguments {argv[1:]}; options are flags such as --rows=1,2")
    rows = selected_rows()
    if dataset_info(DATASET.value) is None:
        cli.fail(f"--dataset={DATASET.value} is not allowed: one of {dataset_names()}")
    scale = nielsen.QUICK if QUICK.value else nielsen.Scale(dataset=DATASET.value)
    overrides = {"seeds": SEEDS.value, "epochs": EPOCHS.value, "train_size": TRAIN_SIZE.value,
                 "ensemble_size": ENSEMBLE.value, "expanded_epochs": EXPANDED_EPOCHS.value}
    if EPOCHS.value is not None and EXPANDED_EPOCHS.value is None:
        overrides["expanded_epochs"] = EPOCHS.value
    scale = dataclasses.replace(
        scale, data_dir=DATA_DIR.value, idx_dir=IDX_DIR.value,
        **{k: v for k, v in overrides.items() if v is not None})
    if QUICK.value and DATASET.present:
        scale = dataclasses.replace(scale, dataset=DATASET.value)
    for row in nielsen.ROWS:  # every run's config, before anything is loaded or written
        if rows is None or row.number in rows:
            validate_config(nielsen.row_config(row, scale, 0))
    enable_compilation_cache()
    device = describe_devices()
    workdir = Path(WORKDIR.value)
    vmapped = EXECUTOR.value == "vmap" or (
        EXECUTOR.value == "auto" and jax.default_backend() != "cpu")
    done = []

    def report(result: nielsen.RowResult) -> None:
        done.append(result)
        table = table_markdown(done, scale, device)
        atomic_write_text(workdir / "results.md", table + "\n")
        print(table)

    results = nielsen.run_table(workdir, scale, rows, on_row=report, vmapped=vmapped,
                                overwrite=OVERWRITE.value)
    plot_curves(results, workdir / "curves.png")
    plot_best_kernels(results, scale, workdir)
    print(f"\nwrote {workdir / 'results.md'}, curves.png and kernel grids")


if __name__ == "__main__":
    cli.run(main)
