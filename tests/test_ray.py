"""The Ray executor: the tiny sweep on a local Ray instance gives the same results as the local
executor (the session's run of it, conftest.tiny_run), in the same trial folders and files.

One Ray instance for the module (starting Ray takes ~10 s), started by the test with 2 CPUs and
stopped at the end; the sweep's driver finds it initialised and leaves it running.
"""

from __future__ import annotations

import os
import warnings

import pytest
from test_sweep import read_csv, tiny_sweep

from cnn_jax.sweep import run_sweep
from cnn_jax.sweep.ray_executor import gpu_environment
from cnn_jax.train.logs import read_json

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_instance(train_env):
    """A local Ray instance; its workers inherit train_env (CPU, shared data and cache)."""
    if ray.is_initialized():
        ray.shutdown()
    with warnings.catch_warnings():
        # Other test modules may have started JAX's threads in this process already; Ray's
        # fork is followed by exec at once (subprocess), which JAX's warning does not know.
        warnings.filterwarnings("ignore", "os.fork", RuntimeWarning)
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
                 configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def both(ray_instance, train_env, tiny_run, tmp_path_factory):
    """(folder, the local run: conftest.tiny_run, the Ray run's outcome in folder / "ray")."""
    root = tmp_path_factory.mktemp("ray")
    remote = run_sweep(tiny_sweep(), root / "ray", executor="ray", echo=False,
                       compilation_cache=train_env["CNN_JAX_COMPILATION_CACHE"])
    return root, tiny_run, remote


KEYS = ("trial", "status", "conv1_out", "pool1_out", "conv2_out", "params", "macs",
        "receptive_field", "test_accuracy", "best_val_accuracy", "final_test_accuracy", "epochs")


def test_ray_executor_gives_the_results_of_the_local_one(both):
    root, local, remote = both
    assert remote.statuses == local.statuses
    assert remote.counts() == {"done": 7, "invalid": 1}
    ray_rows = read_csv(root / "ray" / "results.csv")
    local_rows = read_csv(local.workdir / "results.csv")
    assert [{k: r[k] for k in KEYS} for r in ray_rows] == \
        [{k: r[k] for k in KEYS} for r in local_rows]
    assert (root / "ray" / "report.md").exists()


def test_trials_ran_in_ray_workers(both):
    root, _, remote = both
    for trial in remote.ran:
        run = read_json(root / "ray" / "trials" / trial / "trial.json")["runs"][-1]
        assert run["executor"] == "ray" and run["pid"] != os.getpid()
        assert run["status"] == "done"
    assert ray.is_initialized()  # the sweep left the test's instance running


def test_a_rerun_on_ray_runs_nothing(both, train_env):
    root, _, _ = both
    again = run_sweep(tiny_sweep(), root / "ray", executor="ray", echo=False, report=False,
                      compilation_cache=train_env["CNN_JAX_COMPILATION_CACHE"])
    assert again.ran == [] and again.counts() == {"done": 7, "invalid": 1}


def test_fractional_gpus_get_memory_settings(monkeypatch):
    for name in ("XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION",
                 "XLA_PYTHON_CLIENT_ALLOCATOR"):
        monkeypatch.delenv(name, raising=False)
    assert gpu_environment(0) == {} and gpu_environment(1) == {}
    assert gpu_environment(0.25) == {"XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                                     "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.225"}
    monkeypatch.setenv("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.1")
    assert gpu_environment(0.5)["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.1"
