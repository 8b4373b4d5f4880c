"""Shared fixtures and helpers of the training tests (test_train, test_faults, test_config).

Training tests write nothing under ~: `train_env` (module scope) points CNN_JAX_DATA_DIR and
CNN_JAX_COMPILATION_CACHE at folders shared by all test processes of the session (so the
embedded data set is prepared once and the scripts reuse each other's compiled programs) and
forces the CPU backend; `script_env()` gives subprocesses the same environment.

`run_script` runs `python -m experiments.…` as a fork of a `ScriptServer` (tests/script_server.py),
which has imported jax and the project once: a refusal takes 0.02 s instead of 2 s.
tests/test_script_server.py checks that such a run prints and writes what a fresh one does.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import ml_collections
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "tests" / "configs" / "tiny.py"
TIMING_KEYS = ("epoch_time_s", "images_per_second", "train_time_s", "compile_time_s", "time",
               "model_images_per_second")
_SHARED: dict[str, str] = {}


# `make test` runs the files on two workers (`-n 2 --dist=loadfile`), each file whole on one of
# them; xdist starts with the files that have the most tests. Starting with the longest files
# instead (`--no-loadscope-reorder` and a longest-first order) was measured slower on a fresh
# clone, 9 min 28 s against 9 min 06–13 s, with more CPU time (992 s against 957 s of user
# time): the heavy in-process files then ran on both workers at once (2026-12-03).


@pytest.fixture(scope="session")
def shared_tmp(tmp_path_factory) -> Path:
    """A folder shared by every worker of the session (pytest-xdist gives each its own tmp)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    path = root / "cnn_jax_shared"
    path.mkdir(exist_ok=True)
    return path


@contextlib.contextmanager
def _training_environment(shared_tmp: Path):
    data_dir, cache_dir = shared_tmp / "tensorflow_datasets", shared_tmp / "jax_cache"
    _SHARED.update(CNN_JAX_DATA_DIR=str(data_dir), CNN_JAX_COMPILATION_CACHE=str(cache_dir))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _SHARED.items():
            patch.setenv(name, value)
        patch.setenv("JAX_PLATFORMS", "cpu")
        from cnn_jax.compilation_cache import enable_compilation_cache

        enable_compilation_cache(str(cache_dir))
        yield dict(_SHARED)


@pytest.fixture(scope="module")
def train_env(shared_tmp):
    """os.environ for training in this process and in scripts; restored after the module."""
    with _training_environment(shared_tmp) as env:
        yield env


class SweepRun(NamedTuple):
    workdir: Path
    statuses: dict[str, str]  # trial → status, from results.csv


@pytest.fixture(scope="session")
def tiny_run(shared_tmp) -> SweepRun:
    """configs/sweeps/tiny.py (`tiny_sweep()`) run to its end with its report, once per session:
    by the first worker that asks, the others waiting on a file lock. Tests only read it."""
    from filelock import FileLock

    workdir = shared_tmp / "tiny_sweep"
    with FileLock(shared_tmp / "tiny_sweep.lock"):
        if not (shared_tmp / "tiny_sweep.done").exists():
            from cnn_jax.sweep import run_sweep

            with _training_environment(shared_tmp) as env:
                outcome = run_sweep(tiny_sweep(), workdir, echo=False,
                                    compilation_cache=env["CNN_JAX_COMPILATION_CACHE"])
            assert not outcome.interrupted
            (shared_tmp / "tiny_sweep.done").touch()
    rows = read_csv(workdir / "results.csv")
    return SweepRun(workdir, {row["trial"]: row["status"] for row in rows})


def script_env(**extra: str) -> dict[str, str]:
    """The environment of a script subprocess: CPU, shared data and compilation cache."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(_SHARED, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO), **extra)
    return env


def kill_after(step: int, signal_name: str = "SIGKILL"):
    """A training hook (`cnn_jax.train.hooks.Hook`, last in the list) that sends this process
    `signal_name` right after step `step` has been computed and its record and checkpoint (if one
    is due at `step`) written: a deterministic stand-in for a kill at an arbitrary point. It fires
    only in a process that takes that step, so the rerun of the same command goes on."""
    import jax

    from cnn_jax.train.hooks import Hook

    number = signal.Signals[signal_name if signal_name.startswith("SIG") else f"SIG{signal_name}"]

    class KillAfter(Hook):
        def on_chunk(self, experiment, epoch, done, num_steps):
            jax.block_until_ready(experiment.state)
            if done - num_steps < step <= done:
                os.kill(os.getpid(), number)

    return KillAfter()


def script_command(module: str, args: tuple[str, ...], fault_after: int | None,
                   fault_signal: str) -> list[str]:
    """`python -m module args`, through tests/fault_driver.py when a fault is asked for."""
    if fault_after is None:
        return [sys.executable, "-m", module, *args]
    return [sys.executable, str(REPO / "tests" / "fault_driver.py"), f"--after={fault_after}",
            f"--signal={fault_signal}", "-m", module, *args]


class ScriptServer:
    """A tests/script_server.py process for one environment: `run` forks it into `python -m
    module args` (the project imported once instead of once per script)."""

    def __init__(self, env: dict[str, str]):
        import tempfile

        self.files = tempfile.TemporaryDirectory(prefix="script_server_")  # each run's output
        self.folder = Path(self.files.name)
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "script_server.py")], cwd=REPO, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self.process.stdout.readline()
        if not ready.startswith('{"ready"'):
            raise RuntimeError(f"the script server did not start: {ready!r}")
        self.runs = 0

    def run(self, module: str, args: tuple[str, ...], timeout: float
            ) -> subprocess.CompletedProcess:
        self.runs += 1
        out, err = self.folder / f"{self.runs}.out", self.folder / f"{self.runs}.err"
        request = dict(module=module, args=list(args), cwd=str(REPO), stdout=str(out),
                       stderr=str(err), timeout=timeout)
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        command = [sys.executable, "-m", module, *args]
        stdout, stderr = out.read_text(), err.read_text()
        out.unlink()
        err.unlink()
        if reply.get("timed_out"):
            raise subprocess.TimeoutExpired(command, timeout, stdout, stderr)
        return subprocess.CompletedProcess(command, reply["returncode"], stdout, stderr)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)
        self.files.cleanup()


_SERVERS: dict[tuple[tuple[str, str], ...], ScriptServer] = {}


def pytest_sessionfinish(session, exitstatus) -> None:
    for server in _SERVERS.values():
        server.close()
    _SERVERS.clear()


def script_server(env: dict[str, str]) -> ScriptServer:
    """The server of `env` (pytest's PYTEST_CURRENT_TEST, which names each test, left out)."""
    env = {name: value for name, value in env.items() if name != "PYTEST_CURRENT_TEST"}
    key = tuple(sorted(env.items()))
    if key not in _SERVERS:
        _SERVERS[key] = ScriptServer(env)
    return _SERVERS[key]


def run_script(*args: str, module: str = "experiments.train", timeout: float = 180,
               fault_after: int | None = None, fault_signal: str = "SIGKILL",
               fresh: bool = False, **env: str) -> subprocess.CompletedProcess:
    """`python -m experiments.train *args` in the repository; stdout/stderr captured as text.
    fault_after: send the process `fault_signal` right after that step (`kill_after`).
    Without a fault or extra environment the run is a fork of a `ScriptServer`, unless `fresh`
    asks for a new interpreter (a test of what happens at start-up)."""
    if fault_after is None and not env and not fresh:
        return script_server(script_env()).run(module, args, timeout)
    return subprocess.run(
        script_command(module, args, fault_after, fault_signal), cwd=REPO,
        env=script_env(**env), capture_output=True, text=True, timeout=timeout, check=False,
    )


def tiny_args(workdir: Path, *overrides: str) -> list[str]:
    return [f"--config={TINY}", f"--workdir={workdir}", *overrides]


def tiny_config(**overrides: Any):
    """tests/configs/tiny.py's config with `overrides` (dotted keys as `model__init`)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_config", TINY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    for key, value in overrides.items():
        *parents, last = key.split("__")
        node = config
        for parent in parents:
            node = node[parent]
        node[last] = value
    return config


def read_records(workdir: Path, kinds: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """metrics.jsonl's records (of `kinds`), timing fields removed."""
    lines = (Path(workdir) / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records
            if kinds is None or r["kind"] in kinds]


def without_timing(results: dict[str, Any]) -> dict[str, Any]:
    """results.json without times and provenance (the command line names the workdir)."""
    return {k: v for k, v in results.items() if k not in (*TIMING_KEYS, "provenance")}


def checkpoint(workdir: Path, step: int | None = None) -> tuple[int, dict[str, Any]]:
    """(step, state tree as numpy) of a run's checkpoint (default: the latest)."""
    import orbax.checkpoint as ocp

    manager = ocp.CheckpointManager(Path(workdir).absolute() / "checkpoints")
    try:
        step = manager.latest_step() if step is None else step
        tree = manager.restore(step, args=ocp.args.StandardRestore())
    finally:
        manager.close()
    return step, tree


def leaves(tree: Any) -> dict[str, np.ndarray]:
    """{path: array} of a nested dict."""
    out: dict[str, np.ndarray] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key in sorted(node):
                walk(node[key], f"{prefix}/{key}")
        else:
            out[prefix] = np.asarray(node)

    walk(tree, "")
    return out


def assert_trees_equal(a: Any, b: Any) -> None:
    """Bitwise equality of two state trees."""
    left, right = leaves(a), leaves(b)
    assert left.keys() == right.keys()
    for key in left:
        assert left[key].dtype == right[key].dtype, key
        assert np.array_equal(left[key], right[key]), f"{key} differs"


def stale_files(workdir: Path) -> list[Path]:
    """Temp files or folders left by interrupted writes (ours: .*.tmp; Orbax: *tmp*)."""
    workdir = Path(workdir)
    found = list(workdir.glob(".*.tmp"))
    found += [p for p in (workdir / "checkpoints").glob("*") if "tmp" in p.name]
    return found


def read_tensorboard_scalars(folder: Path) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} from the event files in `folder`, read as TensorBoard does: files in
    name (time) order, and a SessionLog START at step s (a resumed run's `purge_step`) hides the
    earlier events of steps >= s. A torn last record (from a kill) is ignored."""
    import struct

    from cnn_jax.train.logs import import_tensorboardx

    import_tensorboardx()  # without torch
    from tensorboardX.proto import event_pb2

    scalars: dict[str, dict[int, float]] = {}
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        data, position = path.read_bytes(), 0
        while position + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[position:position + 8])
            start, end = position + 12, position + 12 + length
            if end + 4 > len(data):
                break
            event = event_pb2.Event.FromString(data[start:end])
            position = end + 4
            if event.HasField("session_log") and \
                    event.session_log.status == event_pb2.SessionLog.START:
                for values in scalars.values():
                    for step in [s for s in values if s >= event.step]:
                        del values[step]
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars


SWEEPS = REPO / "configs" / "sweeps"


def load_config_file(path: Path) -> ml_collections.ConfigDict:
    """The config of a config file (`get_config()`)."""
    spec = importlib.util.spec_from_file_location(f"sweep_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def tiny_sweep() -> ml_collections.ConfigDict:
    """configs/sweeps/tiny.py on the synthetic data set, without progress bars."""
    config = load_config_file(SWEEPS / "tiny.py")
    config.base.dataset = "synthetic"
    config.base.progress = False
    return config


def sweep_of(axes, seeds=(0,), base=None) -> ml_collections.ConfigDict:
    """A sweep config of `axes` and `seeds` over `base` (default: the tiny sweep's base)."""
    return ml_collections.ConfigDict(
        {"base": base or tiny_sweep().base, "axes": axes, "seeds": list(seeds)})


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))
