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

    def __init__(self, workdir: Path, kind: str = "run"):
        self.workdir = Path(workdir)
        self.kind = kind  # 'run' or 'sweep': how the refusal names the holder
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
                f"workdir {self.workdir} is in use by another {self.kind} (pid {owner}); wait for "
                f"it to finish or stop it, or choose another --workdir") from None
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
    check_writable(workdir)
    saved = read_json(workdir / "config.json")
    if saved is None or overwrite:
        return
    current = json.loads(config_to_json(config))
    differences = semantic_difference(saved, current)
    if differences == ["num_epochs"] and saved["num_epochs"] < current["num_epochs"] \
            and current["schedule"] == "constant":
        return
    if differences:
        fields = [field for key in differences
                  for field in _field_differences(key, _lookup(saved, key), _lookup(current, key))]
        shown = "; ".join(f"{key}: {a} there, {b} now" for key, a, b in fields[:5])
        more = f" and {len(fields) - 5} more" if len(fields) > 5 else ""
        extend = (" (num_epochs can be raised only with the 'constant' schedule)"
                  if "num_epochs" in differences and current["schedule"] != "constant" else "")
        raise WorkdirError(
            f"workdir {workdir} holds a run of another config ({shown}{more}){extend}; choose "
            f"another --workdir, or pass --overwrite to discard that run"
        )


def check_writable(workdir: str | Path) -> None:
    """Raises `WorkdirError`, writing nothing, if `workdir` (or, if it does not exist yet, the
    nearest existing folder above it) is not a writable directory."""
    existing = Path(os.path.abspath(workdir))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise WorkdirError(f"workdir {workdir} cannot be written: Not a directory ({existing})")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise WorkdirError(f"workdir {workdir} cannot be written: Permission denied ({existing})")


def lock_is_free(workdir: str | Path) -> bool | None:
    """Whether no process holds `WorkdirLock(workdir)` now: True, False, or None if the workdir
    has no lock file (never locked). Writes nothing."""
    try:
        file = open(Path(workdir) / LOCK_NAME)  # noqa: SIM115 - closed below
    except OSError:
        return None
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        file.close()  # releases the lock if it was taken
    return True


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


def _field_differences(key: str, saved, current) -> list[tuple[str, str, str]]:
    """(key, saved, current) as short text for each differing field: two layer lists of one
    length are compared layer by layer and field by field (`model.layers[0].kernel: 5 there,
    9 now`)."""
    if isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current) \
            and all(isinstance(x, dict) for x in saved + current):
        found = []
        for index, (a, b) in enumerate(zip(saved, current, strict=True)):
            for field in sorted(set(a) | set(b)):
                if json.dumps(a.get(field), default=str) != json.dumps(b.get(field), default=str):
                    found.append((f"{key}[{index}].{field}", _brief(a.get(field)),
                                  _brief(b.get(field))))
        if found:
            return found
    if isinstance(saved, list) and isinstance(current, list) and len(saved) != len(current):
        return [(key, f"{len(saved)} entries", f"{len(current)} entries")]
    return [(key, _brief(saved), _brief(current))]


def _brief(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
