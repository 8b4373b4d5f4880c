"""Run records in the workdir: metrics.jsonl, TensorBoard event files, status.json, atomic files.

Every file a run writes is either appended line by line (metrics.jsonl, flushed at once) or
replaced atomically (temp file + rename), so a killed process never leaves one half-written.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to `path` through a temp file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
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


class MetricsLog:
    """Appends records to workdir/metrics.jsonl and scalars to TensorBoard event files.

    On resume, `truncate_after(step)` drops the records of steps the restored checkpoint had not
    reached, so a resumed run's log equals an uninterrupted one.
    """

    def __init__(self, workdir: str | os.PathLike, tensorboard: bool = True):
        self.path = Path(workdir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(str(Path(workdir) / "tensorboard"), flush_secs=10)

    def truncate_after(self, step: int) -> list[dict[str, Any]]:
        """Keeps the records with step <= `step` (rewritten atomically); returns them."""
        kept = [r for r in read_jsonl(self.path) if r.get("step", 0) <= step]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        return kept

    def write(self, kind: str, step: int, **values: Any) -> dict[str, Any]:
        record = {"kind": kind, "step": int(step), **values}
        with self.path.open("a") as file:
            file.write(json.dumps(record, default=float) + "\n")
            file.flush()
        if self._writer is not None:
            for name, value in values.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self._writer.add_scalar(f"{kind}/{name}", value, int(step))
        return record

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
