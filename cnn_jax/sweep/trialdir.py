"""A trial's folder, `workdir/trials/<id>/`: config.json, trial.json, status.json, and the
training run's own files (metrics.jsonl, checkpoints/, results.json, train.log).

status.json goes pending → running → done | diverged | failed | interrupted; an impossible
configuration is `invalid` from the start. A trial whose status.json says running but whose
process is gone (the sweep was killed with SIGKILL, the machine rebooted) reads as `dead`
(`status_of`): its recorded pid is not alive on this host, or no sweep holds the workdir's lock.
trial.json holds the swept values, the planned
architecture (per-layer sizes, parameters, multiply-adds, receptive field) and one record per
attempt (`runs`: start, end, status, compilations), so a rerun of the sweep can be told apart.
Every file is replaced atomically (temp file + rename).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from cnn_jax.config import config_to_json, semantic_difference
from cnn_jax.sweep.keys import SweepError
from cnn_jax.sweep.plan import TrialPlan
from cnn_jax.train.logs import atomic_write_json, atomic_write_text, read_json, write_status

FINISHED = ("done", "diverged", "invalid")  # a rerun skips these; failed trials are retried
TRIALS = "trials"


def trial_dir(workdir: str | Path, trial_id: str) -> Path:
    return Path(workdir) / TRIALS / trial_id


DEAD = "dead"


def status_of(directory: Path, record: dict[str, Any] | None = None) -> str:
    """The trial's status (status.json's, or `record` if given), `DEAD` for a running trial whose
    process is gone (`dead_reason`)."""
    record = read_json(directory / "status.json") if record is None else record
    status = "pending" if record is None else record.get("status", "pending")
    if status == "running" and dead_reason(directory):
        return DEAD
    return status


def dead_reason(directory: Path) -> str:
    """Why the running trial in `directory` is dead ('' if it may be alive): the pid that
    trial.json's last attempt records is not alive on this host, or no sweep holds the lock of
    the sweep's workdir (directory/../..)."""
    from cnn_jax.train.workdir import lock_is_free

    run = (read_json(directory / "trial.json", {}) or {}).get("runs", [{}])[-1:] or [{}]
    pid, host = run[0].get("pid"), run[0].get("host")
    where = f"pid {pid} on {host}" if pid is not None else "a process"
    if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
        return f"dead: marked running by {where}, which is no longer alive"
    if lock_is_free(directory.parent.parent):
        return f"dead: marked running by {where}, but no sweep holds this workdir"
    return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def check_config(workdir: Path, plan: TrialPlan) -> None:
    """Refuses a trial folder that holds another config (a changed sweep config, same ids)."""
    directory = trial_dir(workdir, plan.trial.id)
    saved = read_json(directory / "config.json")
    if saved is not None:
        differences = semantic_difference(saved, json.loads(config_to_json(plan.trial.config)))
        if differences:
            raise SweepError(
                f"{directory} holds trial {plan.trial.id} of another sweep config (differs in "
                f"{differences}); use another --workdir")


def prepare(workdir: Path, plan: TrialPlan) -> str:
    """Creates the trial's folder (or checks the one there); returns its status."""
    trial = plan.trial
    directory = trial_dir(workdir, trial.id)
    check_config(workdir, plan)
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / "config.json").exists():
        atomic_write_text(directory / "config.json", config_to_json(trial.config))
    info = read_json(directory / "trial.json", {})
    atomic_write_json(directory / "trial.json", {
        **trial.record(), **plan.architecture(), "runs": info.get("runs", [])})
    status = status_of(directory)
    if not plan.valid:
        if status != "invalid":
            write_status(directory, "invalid", reason=plan.reason)
        return "invalid"
    if status == "invalid" or not (directory / "status.json").exists():
        write_status(directory, "pending")
        return "pending"
    return status


def start_run(directory: Path, executor: str) -> None:
    """Counts an attempt in trial.json and marks the trial running."""
    info = read_json(directory / "trial.json", {})
    runs = info.setdefault("runs", [])
    runs.append({"started": time.time(), "executor": executor, "host": socket.gethostname(),
                 "pid": os.getpid(), "cpus": len(os.sched_getaffinity(0))})
    atomic_write_json(directory / "trial.json", info)
    write_status(directory, "running", attempt=len(runs))


def end_run(directory: Path, status: str, **details: Any) -> None:
    info = read_json(directory / "trial.json", {})
    runs = info.setdefault("runs", [{}])
    runs[-1].update(finished=time.time(), status=status, **details)
    atomic_write_json(directory / "trial.json", info)

