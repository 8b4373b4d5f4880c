"""Runs a sweep's trials as Ray tasks: the engine for sweeps that outgrow one machine.

    python -m experiments.sweep --config=configs/sweeps/filter_size.py \
        --workdir=/shared/sweeps/filter --executor=ray --ray_address=auto --gpus_per_trial=0.25

One Ray task per trial, running the same `worker.run_trial` as the local executor, in the same
trial folders, so resuming, the result files and the report do not depend on the executor. The
driver connects to Ray before JAX does anything in it and never computes with JAX; the workers
import and initialise JAX inside the task. Ray reuses worker processes, so a worker keeps its
loaded data set and its compiled programs for the next trial; the persistent compilation cache
(workdir/jax_cache) shares compiled programs between workers. A worker that dies is retried by
Ray, and its trial resumes from its last checkpoint. (Ray Tune adds search algorithms and early
stopping; a grid needs neither, so plain tasks keep the trial folders as the one record.)

Cluster requirements: `--workdir` on storage every node sees (NFS, a shared disk), and the code
on every node (installed, or shipped with `--ray_working_dir=.`, Ray's runtime_env working_dir).

GPU memory, several trials per GPU (`--gpus_per_trial=1/n`): by default JAX preallocates 75% of
a GPU's memory in the first process that uses it, so a second trial on that GPU runs out of
memory. Tasks with a fractional GPU therefore get XLA_PYTHON_CLIENT_PREALLOCATE=false (allocate
as needed) and XLA_PYTHON_CLIENT_MEM_FRACTION=0.9·gpus_per_trial (each process's cap), unless
the driver's environment sets them (then its values are passed on). XLA_PYTHON_CLIENT_ALLOCATOR=
platform frees memory exactly at some speed cost, for trials whose peaks differ a lot.
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

from cnn_jax.sweep import trialdir
from cnn_jax.train.logs import write_status

MEMORY_VARIABLES = ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION",
                    "XLA_PYTHON_CLIENT_ALLOCATOR")
UPLOAD_EXCLUDES = ["runs/", "sweeps/", ".venv/", ".git/", "*.pyc", "__pycache__/"]


def gpu_environment(gpus_per_trial: float) -> dict[str, str]:
    """The XLA memory settings a task gets (see the module docstring)."""
    env = {name: os.environ[name] for name in MEMORY_VARIABLES if name in os.environ}
    if 0 < gpus_per_trial < 1:
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", f"{0.9 * gpus_per_trial:.3f}")
    return env


def _trial_task(directory: str, config, cache: str) -> dict[str, Any]:
    """Inside a Ray worker: JAX is imported and initialised here, not in the driver."""
    from cnn_jax.compilation_cache import enable_compilation_cache
    from cnn_jax.sweep.worker import run_trial

    enable_compilation_cache(cache)
    return run_trial(directory, config, executor="ray")


class RaySession:
    """A connection to Ray; `close()` shuts Ray down only if this session started it."""

    def __init__(self, started: bool):
        self.started = started

    def run(self, todo, workdir: Path, finished, cache: str, *, cpus_per_trial: float = 1,
            gpus_per_trial: float = 0, working_dir: str | None = None) -> bool:
        """Submits every trial in `todo`; calls `finished(outcome)` as each one ends."""
        import ray

        del working_dir  # used by connect()
        task = ray.remote(_trial_task).options(
            num_cpus=cpus_per_trial, num_gpus=gpus_per_trial,
            runtime_env={"env_vars": gpu_environment(gpus_per_trial)})
        pending: dict[Any, Any] = {}
        for plan in todo:
            config = copy.deepcopy(plan.trial.config)
            config.progress = False  # no terminal in a worker
            directory = trialdir.trial_dir(workdir, plan.trial.id).resolve()
            pending[task.remote(str(directory), config, cache)] = plan
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                plan = pending.pop(ready[0])
                finished(self._outcome(ready[0], plan, workdir))
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)
            return True
        return False

    @staticmethod
    def _outcome(ref, plan, workdir: Path) -> dict[str, Any]:
        import ray

        try:
            return ray.get(ref)
        except ray.exceptions.RayError as error:
            reason = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
            write_status(trialdir.trial_dir(workdir, plan.trial.id), "failed", reason=reason)
            return {"id": plan.trial.id, "status": "failed", "results": {"reason": reason}}

    def close(self) -> None:
        import ray

        if self.started and ray.is_initialized():
            ray.shutdown()


def connect(address: str | None, working_dir: str | None = None) -> RaySession:
    """Connects to the Ray cluster at `address` (None: start a local one) unless this process is
    connected already (e.g. a test's Ray instance)."""
    import ray

    if ray.is_initialized():
        return RaySession(started=False)
    runtime_env = None
    if working_dir:
        runtime_env = {"working_dir": str(Path(working_dir).resolve()),
                       "excludes": UPLOAD_EXCLUDES}
    ray.init(address=address or None, include_dashboard=False, runtime_env=runtime_env,
             logging_level=logging.WARNING)
    return RaySession(started=True)
