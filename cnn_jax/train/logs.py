"""Run records in the workdir: metrics.jsonl, TensorBoard event files, status.json, atomic files.

Every file a run writes is either appended line by line (metrics.jsonl, flushed at once; a torn
last line from a kill is ignored by the reader and dropped on resume) or replaced atomically
(temp file in the same folder, fsync, rename), so a killed process never leaves one half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TEMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp's 0600 is for secrets


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to `path` through a temp file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(handle, _FILE_MODE)
        with os.fdopen(handle, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=1, sort_keys=True, default=float) + "\n")


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Deletes the temp files and folders (`.*.tmp`) a killed process left in `folder`."""
    removed = []
    for path in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; a torn last line (from a kill) is ignored."""
    records = []
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return records
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def write_status(workdir: str | os.PathLike, status: str, **details: Any) -> None:
    """workdir/status.json: pending | running | done | diverged | interrupted | failed | invalid."""
    atomic_write_json(Path(workdir) / "status.json", {"status": status, "time": time.time(),
                                                      **details})


def read_status(workdir: str | os.PathLike) -> str | None:
    record = read_json(Path(workdir) / "status.json")
    return None if record is None else record.get("status")


def import_tensorboardx() -> None:
    """Imports tensorboardX without PyTorch.

    tensorboardX imports torch if it is installed (only to accept torch tensors), which costs
    seconds at every start; scalars need nothing of it, so the import is blocked meanwhile.
    """
    if "tensorboardX" in sys.modules or "torch" in sys.modules:
        import tensorboardX  # noqa: F401
        return
    sys.modules["torch"] = None  # makes `import torch` raise ImportError, which tensorboardX skips
    try:
        import tensorboardX  # noqa: F401
    finally:
        del sys.modules["torch"]


class TensorBoardScalars:
    """Scalars in a TensorBoard event file, written synchronously and flushed at every record.

    (tensorboardX's SummaryWriter queues events for a thread and loses the queue on a kill.)
    A resumed run opens a new file whose first event is a SessionLog START at `purge_step`: as for
    tf.summary and tensorboardX, TensorBoard then hides the earlier events of steps >= purge_step.
    """

    def __init__(self, folder: str | os.PathLike, purge_step: int | None = None):
        import_tensorboardx()
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event, SessionLog
        from tensorboardX.proto.summary_pb2 import Summary

        self._event, self._summary = Event, Summary
        os.makedirs(folder, exist_ok=True)
        # The pid in the name: two attempts started in the same second never share a file.
        self._writer = EventsWriter(os.path.join(folder, "events"), f".{os.getpid()}")
        if purge_step is not None:
            self._writer.write_event(Event(
                step=purge_step, wall_time=time.time(),
                session_log=SessionLog(status=SessionLog.START)))
        self._writer.flush()

    def write(self, prefix: str, step: int, values: dict[str, float]) -> None:
        summary = self._summary(value=[
            self._summary.Value(tag=f"{prefix}/{name}", simple_value=float(value))
            for name, value in values.items()])
        self._writer.write_event(self._event(wall_time=time.time(), step=step, summary=summary))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class MetricsLog:
    """Appends records to workdir/metrics.jsonl and scalars to TensorBoard event files.

    On resume, `truncate_after(step)` drops the records of steps the restored checkpoint had not
    reached, so a resumed run's log equals an uninterrupted one; the TensorBoard file of the
    resumed attempt starts with a purge at step + 1, so TensorBoard drops the events the earlier
    attempt wrote past the checkpoint (they are recomputed).
    """

    def __init__(self, workdir: str | os.PathLike, tensorboard: bool = True,
                 resume_step: int | None = None):
        self.path = Path(workdir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = None
        if tensorboard:
            self._writer = TensorBoardScalars(
                Path(workdir) / "tensorboard",
                purge_step=None if resume_step is None else resume_step + 1)

    def truncate_after(self, step: int) -> list[dict[str, Any]]:
        """Keeps the records with step <= `step` (rewritten atomically); returns them."""
        kept = [r for r in read_jsonl(self.path) if r.get("step", 0) <= step]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        return kept

    def write(self, kind: str, step: int, **values: Any) -> dict[str, Any]:
        """Appends one record {kind, step, **values} (and its numbers to TensorBoard)."""
        record = {"kind": kind, "step": int(step), **values}
        line = json.dumps(record, default=float) + "\n"
        with self.path.open("a") as file:
            file.write(line)
            file.flush()
        scalars = {name: value for name, value in values.items() if name != "epoch"
                   and isinstance(value, int | float) and not isinstance(value, bool)}
        if self._writer is not None and scalars:
            self._writer.write(kind, int(step), scalars)
        return record

    def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()
