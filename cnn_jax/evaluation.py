"""What a trained model scores: the accuracy and confusion matrix of a split of its data set,
and the labels it gives image files (what `python -m experiments.evaluate` prints)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from cnn_jax.errors import RunError
from cnn_jax.inference import TrainedModel, inverted_hint, read_images

SPLITS = ("test", "validation")


@dataclasses.dataclass(frozen=True)
class SplitScore:
    """The model on one split: `correct` of `total` examples, and the confusion matrix."""

    dataset: str
    split: str
    correct: int
    total: int
    confusion: np.ndarray  # (classes, classes): row = true label, column = predicted label

    @property
    def accuracy(self) -> float:
        return self.correct / self.total


def confusion_matrix(labels: Any, predicted: Any, classes: int) -> np.ndarray:
    """(classes, classes) int64 counts: row = true label, column = predicted label."""
    labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
    return np.bincount(labels * classes + predicted, minlength=classes * classes).reshape(
        classes, classes)


def score_split(model: TrainedModel, split: str, *, batch_size: int) -> SplitScore:
    """Loads the run's data set and scores the model on its `split` ('test' or 'validation').

    Raises:
      RunError: the run has no such split (validation_size 0).
    """
    from cnn_jax.config import load_for_config

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    dataset = load_for_config(model.config)
    images, labels = ((dataset.test_images, dataset.test_labels) if split == "test"
                      else (dataset.val_images, dataset.val_labels))
    if not len(labels):
        raise RunError(f"the run has no {split} split (config.validation_size = "
                       f"{model.config.validation_size})")
    predicted, _ = model.predict(images, batch_size=batch_size)
    return SplitScore(dataset.name, split, int(np.sum(predicted == labels)), len(labels),
                      confusion_matrix(labels, predicted, model.num_classes))


def format_confusion(matrix: np.ndarray) -> str:
    """Plain-text confusion matrix: rows true labels, columns predicted labels."""
    width = max(4, len(str(int(matrix.max()))) + 1)
    lines = ["confusion matrix (rows: true label, columns: predicted label)",
             "true\\pred" + "".join(f"{k:>{width}}" for k in range(len(matrix)))]
    lines += [f"{k:>9}" + "".join(f"{n:>{width}}" for n in row) for k, row in enumerate(matrix)]
    return "\n".join(lines)


def classify_files(model: TrainedModel, paths: list[str], *, top: int, batch_size: int
                   ) -> tuple[str, list[str]]:
    """(hint, lines): one line per image of `paths` (files, .npy stacks, folders: every file is
    read and checked before any is classified) with its label, the label's probability and the
    `top` labels; `hint` is `inverted_hint`'s line ('' when the images look like MNIST's)."""
    parts = [read_images(path, model) for path in paths]
    names = [name for part, _ in parts for name in part]
    images = np.concatenate([stack for _, stack in parts])
    labels, probabilities = model.predict(images, batch_size=batch_size)
    lines = []
    for path, label, row in zip(names, labels, probabilities, strict=True):
        best = np.argsort(-row, kind="stable")[:top]
        ranked = ", ".join(f"{k}: {row[k]:.4f}" for k in best)
        lines.append(f"{path}: label {label} (probability {row[label]:.4f}); top {top}: {ranked}")
    return inverted_hint(names, images), lines
