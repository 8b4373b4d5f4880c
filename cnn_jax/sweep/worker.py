"""Runs one trial (`run_trial`), or a group of same-shape trials as one vmapped program
(`run_group`), in this process: the same functions for the local, vmap and Ray executors.

The data set is loaded once per process and reused by every trial with the same data keys
(`cnn_jax.config.DATA_KEYS`: dataset, data_dir, idx_dir, validation_size, train_size, test_size,
expand, and the seed for the synthetic set; the last 2 data sets are kept). The compiled training
step is cached on its static description (`cnn_jax.train.experiment`), so trials that differ only in
learning rate, λ or seed compile nothing; `CompileCounter` records how many programs each trial
compiled, in trial.json.
"""

from __future__ import annotations

import contextlib
import math
import traceback
from pathlib import Path
from typing import Any

import ml_collections

from cnn_jax.config import ConfigError, DatasetCache, data_key
from cnn_jax.data import DataError
from cnn_jax.sweep import trialdir
from cnn_jax.sweep.compiles import CompileCounter
from cnn_jax.sweep.plan import invalid_reason
from cnn_jax.train.logs import read_json, write_status

__all__ = ["LOADS", "data_key", "dataset_for", "run_group", "run_trial"]

_DATASETS = DatasetCache(keep=2)
dataset_for = _DATASETS.get  # the config's data set, loaded at most once per process while kept
LOADS = _DATASETS.loads  # data key → loads in this process (for tests and the log)


def run_trial(directory: str | Path, config: ml_collections.ConfigDict, *, executor: str = "local"
              ) -> dict[str, Any]:
    """Trains (or resumes) the trial in `directory`; returns {id, status, results, compiles}.

    Training output goes to directory/train.log. A `ConfigError` found only when the data is
    there (e.g. batch size above the training set) makes the trial `invalid`; a missing or
    corrupt data set (`DataError`) marks it `failed` and stops the sweep; any other error makes
    it `failed` with the reason (and the traceback in train.log); a rerun retries it.
    """
    from cnn_jax.train import train_and_evaluate

    directory = Path(directory)
    trialdir.start_run(directory, executor)
    results: dict[str, Any] = {}
    with CompileCounter() as count, (directory / "train.log").open("a") as log:
        try:
            with contextlib.redirect_stdout(log):
                results = train_and_evaluate(config, directory, dataset=dataset_for(config))
            status = results["status"]
        except ConfigError as error:
            reason = invalid_reason(error)
            status, results = "invalid", {"status": "invalid", "reason": reason}
            write_status(directory, "invalid", reason=reason)
        except DataError as error:  # the data set is missing: every trial would fail
            write_status(directory, "failed", reason=f"{type(error).__name__}: {error}")
            raise
        except Exception as error:  # noqa: BLE001 - one bad trial must not stop the sweep
            log.write(traceback.format_exc())
            reason = f"{type(error).__name__}: {error}"
            status, results = "failed", {"status": "failed", "reason": reason}
            write_status(directory, "failed", reason=reason)
    trialdir.end_run(directory, status, compiles=count.compiles, cache_loads=count.cache_loads,
                     compile_seconds=count.seconds)
    info = read_json(directory / "trial.json", {})
    return {"id": info.get("id", directory.name), "status": status, "results": _plain(results),
            "compiles": count.compiles, "cache_loads": count.cache_loads}


def run_group(directories: list[str | Path], configs: list[ml_collections.ConfigDict], *,
              executor: str = "vmap") -> list[dict[str, Any]]:
    """Trains same-shape trials as one vmapped program (`cnn_jax.train.train_vmapped`); returns one
    outcome per trial, as `run_trial` does.

    The group's output goes to every trial's train.log; its compilations are counted on the first
    trial. Errors are handled as in `run_trial`, for every trial of the group; a group that cannot
    resume together (`GroupError`) runs its trials one by one.
    """
    from cnn_jax.train import GroupError, train_vmapped

    directories = [Path(directory) for directory in directories]
    for directory in directories:
        trialdir.start_run(directory, executor)
    ids = [read_json(d / "trial.json", {}).get("id", d.name) for d in directories]
    results: list[dict[str, Any]] = []
    with CompileCounter() as count, contextlib.ExitStack() as files:
        logs = [files.enter_context((d / "train.log").open("a")) for d in directories]
        try:
            with contextlib.redirect_stdout(_Tee(logs)):
                print(f"trained as one vmapped program with {ids}")
                results = train_vmapped(configs, directories, dataset=dataset_for(configs[0]))
        except GroupError as error:
            regroup = str(error)
        except ConfigError as error:
            reason = invalid_reason(error)
            results = [{"status": "invalid", "reason": reason}] * len(directories)
        except DataError as error:
            for directory in directories:
                write_status(directory, "failed", reason=f"{type(error).__name__}: {error}")
            raise
        except Exception as error:  # noqa: BLE001 - one bad group must not stop the sweep
            for log in logs:
                log.write(traceback.format_exc())
            reason = f"{type(error).__name__}: {error}"
            results = [{"status": "failed", "reason": reason}] * len(directories)
    if not results:  # GroupError: one by one
        for directory in directories:
            trialdir.end_run(directory, "regrouped", reason=regroup)
        return [run_trial(d, config, executor=executor)
                for d, config in zip(directories, configs, strict=True)]
    outcomes = []
    for index, (directory, result) in enumerate(zip(directories, results, strict=True)):
        status = result["status"]
        if status in ("invalid", "failed"):
            write_status(directory, status, reason=result["reason"])
        first = index == 0  # the group's programs are counted once, on its first trial
        compiles, cache_loads = (count.compiles, count.cache_loads) if first else (0, 0)
        trialdir.end_run(directory, status, compiles=compiles, group=ids, cache_loads=cache_loads,
                         compile_seconds=count.seconds if first else 0.0)
        outcomes.append({"id": ids[index], "status": status, "results": _plain(result),
                         "compiles": compiles, "cache_loads": cache_loads})
    return outcomes


class _Tee:
    """A text stream that writes to several files."""

    def __init__(self, files: list[Any]):
        self.files = files

    def write(self, text: str) -> int:
        for file in self.files:
            file.write(text)
        return len(text)

    def flush(self) -> None:
        for file in self.files:
            file.flush()


def _plain(results: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy (NaN → None), as sent back from a Ray worker."""
    out = {}
    for key, value in results.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[key] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
    return out
