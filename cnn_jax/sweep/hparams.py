"""TensorBoard HParams records (tensorboardX, no TensorFlow): one run per finished trial in
workdir/tensorboard/<trial id>, with its swept values and its metrics.

    tensorboard --logdir sweeps/x/tensorboard     # the HPARAMS tab

Written once per trial (a trial's folder there is kept), so rebuilding the report while the sweep
runs only adds the trials finished since.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

HPARAM_METRICS = {
    "hparam/test_accuracy": "test_accuracy", "hparam/best_val_accuracy": "best_val_accuracy",
    "hparam/train_time_s": "train_time_s", "hparam/images_per_second": "images_per_second",
}


def _hparam_value(value: Any) -> bool | int | float | str:
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def write_hparams(manifest: dict[str, Any], rows: list[dict[str, Any]], folder: Path) -> int:
    """Adds the HParams run of every done or diverged trial not written yet; returns how many."""
    from tensorboardX import SummaryWriter
    from tensorboardX.summary import hparams

    keys = [key for dim in manifest["dimensions"] for key in dim["keys"]]
    written = 0
    for row in rows:
        run = folder / row["trial"]
        if row["status"] not in ("done", "diverged") or run.exists():
            continue
        values = {key: _hparam_value(row[key]) for key in keys}
        values.update(seed=row["seed"], params=row.get("params") or 0,
                      macs=row.get("macs") or 0)
        metrics = {name: float(row[column]) for name, column in HPARAM_METRICS.items()
                   if isinstance(row.get(column), int | float)}
        experiment, start, end = hparams(values, metrics)
        temporary = folder / f".{row['trial']}.tmp"
        shutil.rmtree(temporary, ignore_errors=True)
        with SummaryWriter(logdir=str(temporary)) as writer:
            for summary in (experiment, start, end):
                writer.file_writer.add_summary(summary)
            for name, value in metrics.items():
                writer.add_scalar(name, value, 0)
        os.replace(temporary, run)  # a killed report leaves no half-written run
        written += 1
    return written
