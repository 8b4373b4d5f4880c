"""The workdir of a run: refuse to mix two configs in one, fail clearly if it cannot be written."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import ml_collections

from cnn_jax.config import config_to_json, semantic_difference
from cnn_jax.errors import WorkdirError
from cnn_jax.train.logs import atomic_write_text, read_json, remove_stale_temp_files

RUN_FILES = ("checkpoints", "metrics.jsonl", "tensorboard", "status.json", "results.json")
RUN_PATTERNS = ("*.png",)  # plots
LOCK_NAME = ".lock"


class WorkdirLock:
    """Context manager: an exclusive lock on `workdir` (created if needed) for one run.

    Two runs in one workdir would overwrite each other's checkpoints and logs; the second is
    refused with `WorkdirError`. The lock (flock on workdir/.lock) dies with its process, so a
    killed run never leaves the workdir locked.
    """

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self._file = None

    def __enter__(self) -> WorkdirLock:
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            file = open(self.workdir / LOCK_NAME, "a+")  # held until __exit__
        except OSError as error:
            raise WorkdirError(
                f"workdir {self.workdir} cannot be written: {_reason(error)}") from None
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            owner = file.read().strip() or "unknown"
            file.close()
            raise WorkdirError(
                f"workdir {self.workdir} is in use by another run (pid {owner}); wait for it to "
                f"finish or stop it, or choose another --workdir") from None
        file.seek(0)
        file.truncate()
        file.write(str(os.getpid()))
        file.flush()
        self._file = file
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def check_workdir(workdir: Path, config: ml_collections.ConfigDict, *, overwrite: bool) -> None:
    """Refuses, without writing anything, a workdir that cannot be written or holds a run of
    another config (unless `overwrite`).

    A finished or stopped run whose config differs only by a larger `num_epochs` with the
    'constant' schedule is the same run, extended: it resumes from its last checkpoint. (With a
    decaying schedule the length of training is part of every step's learning rate.)
    """
    existing = Path(os.path.abspath(workdir))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise WorkdirError(f"workdir {workdir} cannot be written: Not a directory ({existing})")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise WorkdirError(f"workdir {workdir} cannot be written: Permission denied ({existing})")
    saved = read_json(workdir / "config.json")
    if saved is None or overwrite:
        return
    current = json.loads(config_to_json(config))
    differences = semantic_difference(saved, current)
    if differences == ["num_epochs"] and saved["num_epochs"] < current["num_epochs"] \
            and current["schedule"] == "constant":
        return
    if differences:
        shown = "; ".join(f"{key}: {_lookup(saved, key)!r} there, {_lookup(current, key)!r} now"
                          for key in differences[:5])
        more = f" and {len(differences) - 5} more" if len(differences) > 5 else ""
        extend = (" (num_epochs can be raised only with the 'constant' schedule)"
                  if "num_epochs" in differences and current["schedule"] != "constant" else "")
        raise WorkdirError(
            f"workdir {workdir} holds a run of another config ({shown}{more}){extend}; choose "
            f"another --workdir, or pass --overwrite to discard that run"
        )


def prepare_workdir(workdir: Path, config: ml_collections.ConfigDict, *, overwrite: bool) -> None:
    """Creates `workdir` and writes config.json (after `check_workdir`). With `overwrite`, the
    previous run's files are removed first; temp files a killed process left are removed."""
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(workdir)
        if overwrite:
            paths = [workdir / name for name in RUN_FILES]
            paths += [path for pattern in RUN_PATTERNS for path in workdir.glob(pattern)]
            for path in paths:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
        atomic_write_text(workdir / "config.json", config_to_json(config))
    except OSError as error:
        raise WorkdirError(f"workdir {workdir} cannot be written: {_reason(error)}") from None


def _lookup(tree: dict, dotted: str):
    for part in dotted.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def _reason(error: OSError) -> str:
    """'No space left on device (/path/file)' from an OSError."""
    reason = error.strerror or str(error)
    return f"{reason} ({error.filename})" if error.filename else reason


def workdir_failure(workdir: Path, error: OSError) -> WorkdirError:
    """The error to raise when writing a run's files fails midway (disk full, removed, ...)."""
    return WorkdirError(f"writing the run's files in workdir {workdir} failed: {_reason(error)}")
