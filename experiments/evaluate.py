"""Evaluates a trained run on its data set, or predicts the labels of image files.

    python -m experiments.evaluate --workdir=runs/default                  # test split
    python -m experiments.evaluate --workdir=runs/default --split=validation --checkpoint=latest
    python -m experiments.evaluate --workdir=runs/default --images=a.png,b.npy --top=3
    python -m experiments.evaluate --workdir=runs/default --images=digits/,stack.npy

Without --images: the accuracy and the number of examples of the split (and a 10×10 confusion
matrix for 10-class data). With --images: one line per image (a file, `stack.npy[i]` of an
(N, H, W[, C]) stack, or each .png/.npy file of a folder), its predicted label and probability
and the top-k labels; images that look inverted (dark on light) get a one-line hint.
PNG or NPY, grey or RGB (converted to the model's channels), pixels 0..255
(divided by the run's pixel scale) or floats in [0, 1]; the size must be the model's.

Exit codes: 0 done, 2 bad flags, files or run folder (one `error:` line; --verbose for a
traceback).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from absl import flags

from cnn_jax import cli
from cnn_jax.compilation_cache import enable_compilation_cache
from cnn_jax.errors import DataError
from cnn_jax.inference import (
    CHUNK_SIZE,
    TrainedModel,
    confusion_matrix,
    inverted_hint,
    load_run,
    read_config,
    read_images,
)

WORKDIR, CHECKPOINT = cli.define_run_flags()
SPLIT = flags.DEFINE_enum("split", "test", ["test", "validation"], "Split to evaluate.")
IMAGES = flags.DEFINE_list("images", [], "Comma-separated PNG or NPY files, NPY stacks "
                          "(N, H, W[, C]) or folders of such files, to classify.")
TOP = flags.DEFINE_integer("top", None, "Labels to print per image (1..classes; default 3).",
                           lower_bound=1)
BATCH_SIZE = flags.DEFINE_integer("batch_size", CHUNK_SIZE, "Images per compiled call.",
                                  lower_bound=1)


def main(argv: list[str]) -> None:
    cli.require_run_folder(argv, WORKDIR.value)
    read_config(WORKDIR.value)  # a run folder, before anything is compiled
    for path in IMAGES.value:
        if not path.strip():
            cli.fail("--images holds an empty path")
        if not Path(path).exists():
            raise DataError(f"{path}: no such file or folder")
    enable_compilation_cache()
    checkpoint = CHECKPOINT.value
    model = load_run(WORKDIR.value, checkpoint=int(checkpoint) if checkpoint.isdigit()
                     else checkpoint)
    top = min(3, model.num_classes) if TOP.value is None else TOP.value
    if top > model.num_classes:
        cli.fail(f"--top={top}: the model has {model.num_classes} classes")
    where = f"{WORKDIR.value}: checkpoint of step {model.step}" + (
        "" if checkpoint.isdigit() else f" ({checkpoint})")
    if IMAGES.value:
        classify_files(model, IMAGES.value, top)
    else:
        evaluate_split(model, SPLIT.value, where)


def classify_files(model: TrainedModel, paths: list[str], top: int) -> None:
    """One line per file: path, predicted label and its probability, the top-k labels."""
    parts = [read_images(path, model) for path in paths]  # all checked first
    names = [name for part, _ in parts for name in part]
    images = np.concatenate([stack for _, stack in parts])
    hint = inverted_hint(names, images)
    if hint:
        print(hint, file=sys.stderr)
    labels, probabilities = model.predict(images, batch_size=BATCH_SIZE.value)
    for path, label, row in zip(names, labels, probabilities, strict=True):
        best = np.argsort(-row, kind="stable")[:top]
        ranked = ", ".join(f"{k}: {row[k]:.4f}" for k in best)
        print(f"{path}: label {label} (probability {row[label]:.4f}); top {top}: {ranked}")


def evaluate_split(model: TrainedModel, split: str, where: str) -> None:
    """The accuracy on `split` of the run's data set, and the confusion matrix of 10 classes."""
    from cnn_jax.train.inputs import load_for_config

    dataset = load_for_config(model.config)
    images, labels = ((dataset.test_images, dataset.test_labels) if split == "test"
                      else (dataset.val_images, dataset.val_labels))
    if not len(labels):
        cli.fail(f"the run has no {split} split (config.validation_size = "
                 f"{model.config.validation_size})")
    predicted, _ = model.predict(images, batch_size=BATCH_SIZE.value)
    correct = int(np.sum(predicted == labels))
    print(f"{where}, {split} split of {dataset.name}: accuracy {correct / len(labels):.4f} "
          f"({correct} of {len(labels)} examples)")
    if model.num_classes == 10:
        print(format_confusion(confusion_matrix(labels, predicted, model.num_classes)))


def format_confusion(matrix: np.ndarray) -> str:
    """Plain-text confusion matrix: rows true labels, columns predicted labels."""
    width = max(4, len(str(int(matrix.max()))) + 1)
    lines = ["confusion matrix (rows: true label, columns: predicted label)",
             "true\\pred" + "".join(f"{k:>{width}}" for k in range(len(matrix)))]
    lines += [f"{k:>9}" + "".join(f"{n:>{width}}" for n in row) for k, row in enumerate(matrix)]
    return "\n".join(lines)


if __name__ == "__main__":
    cli.run(main)
