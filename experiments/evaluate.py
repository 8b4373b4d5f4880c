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

from absl import flags

from cnn_jax import cli
from cnn_jax.compilation_cache import enable_compilation_cache
from cnn_jax.errors import DataError
from cnn_jax.evaluation import SPLITS, classify_files, format_confusion, score_split
from cnn_jax.inference import CHUNK_SIZE, load_run, read_config

WORKDIR, CHECKPOINT = cli.define_run_flags()
SPLIT = flags.DEFINE_enum("split", "test", list(SPLITS), "Split to evaluate.")
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
        hint, lines = classify_files(model, IMAGES.value, top=top, batch_size=BATCH_SIZE.value)
        if hint:
            print(hint, file=sys.stderr)
        print("\n".join(lines))
        return
    score = score_split(model, SPLIT.value, batch_size=BATCH_SIZE.value)
    print(f"{where}, {score.split} split of {score.dataset}: accuracy {score.accuracy:.4f} "
          f"({score.correct} of {score.total} examples)")
    if model.num_classes == 10:
        print(format_confusion(score.confusion))


if __name__ == "__main__":
    cli.run(main)
