"""The workdir of a run: refuse to mix two configs in one, fail clearly if it cannot be written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import ml_collections

from cnn_jax.config import config_to_json, semantic_difference
from cnn_jax.train.logs import atomic_write_text, read_json

RUN_FILES = ("checkpoints", "metrics.jsonl", "tensorboard", "status.json", "results.json")


class WorkdirError(RuntimeError):
    """The workdir cannot be used for this run (another config, not writable, disk full)."""


def prepare_workdir(workdir: Path, config: ml_collections.ConfigDict, *, overwrite: bool) -> None:
    """Creates `workdir` and writes config.json; refuses a workdir that holds another config.

    With `overwrite`, the previous run's files are removed first.
    """
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / ".write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise WorkdirError(f"workdir {workdir} cannot be written: {_reason(error)}") from None
    saved = read_json(workdir / "config.json")
    current = json.loads(config_to_json(config))
    if saved is not None and not overwrite:
        differences = semantic_difference(saved, current)
        if differences:
            raise WorkdirError(
                f"workdir {workdir} holds a run of another config (differs in {differences}); "
                f"choose another --workdir, or pass --overwrite to discard that run"
            )
    if overwrite:
        for name in RUN_FILES:
            path = workdir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    try:
        atomic_write_text(workdir / "config.json", config_to_json(config))
    except OSError as error:
        raise WorkdirError(f"workdir {workdir} cannot be written: {_reason(error)}") from None


def _reason(error: OSError) -> str:
    return error.strerror or str(error)
