"""A local sweep's trials several at a time (cnn_jax/sweep/parallel.py): the CPU shares, the
'auto' rule, the same accuracies as one at a time, and stopping (SIGINT, kill -9) then resuming.

The sweep is configs/sweeps/tiny.py on the synthetic data set (7 possible trials, 1 impossible).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, SWEEPS, script_env, tiny_sweep

from cnn_jax.sweep import run_sweep
from cnn_jax.sweep.parallel import cpu_shares, pick_workers
from cnn_jax.sweep.throughput import measure_parallel
from cnn_jax.sweep.trialdir import DEAD, status_of
from cnn_jax.train.logs import read_json

pytestmark = pytest.mark.usefixtures("train_env")


def test_cpu_shares_are_disjoint_near_equal_and_in_order():
    assert cpu_shares([0, 1], 2) == [[0], [1]]
    assert cpu_shares([0, 1, 2, 3, 4], 2) == [[0, 1, 2], [3, 4]]
    assert cpu_shares([4, 6, 7], 1) == [[4, 6, 7]]
    with pytest.raises(ValueError, match="3 workers"):
        cpu_shares([0, 1], 3)


def test_auto_follows_the_measurement_and_a_number_is_capped():
    assert pick_workers("auto", pending=10, backend="cpu", cpus=2) == 1  # BENCHMARKS.md
    assert pick_workers("auto", pending=10, backend="gpu", cpus=2) == 1
    assert pick_workers(2, pending=10, cpus=2) == 2
    assert pick_workers(2, pending=1, cpus=2) == 1
    assert pick_workers(3, pending=10, cpus=2) == 2  # never more workers than CPUs
    with pytest.raises(ValueError, match="got 0"):
        pick_workers(0, pending=10, cpus=2)


def _runs(workdir: Path) -> list[dict]:
    return [run for path in (workdir / "trials").glob("*/trial.json")
            for run in read_json(path)["runs"]]


def test_two_at_a_time_give_the_accuracies_of_one_at_a_time(train_env, tmp_path):
    measured = measure_parallel(tiny_sweep(), tmp_path, counts=(1, 2), max_trials=4,
                                compilation_cache=train_env["CNN_JAX_COMPILATION_CACHE"])
    one, two = measured["rows"]
    assert one["trials"] == two["trials"] == 4
    assert measured["identical"], (one["accuracies"], two["accuracies"])
    runs = _runs(tmp_path / "parallel2")
    assert len({run["pid"] for run in runs}) == 2 and os.getpid() not in {r["pid"] for r in runs}
    assert {run["cpus"] for run in runs} == {len(os.sched_getaffinity(0))}
    assert "2 trials at a time, each in a worker process on all" in (
        tmp_path / "parallel2" / "sweep.log").read_text()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: nothing to share")
def test_pinned_workers_each_train_on_their_own_share_of_the_cpus(tmp_path):
    run_sweep(tiny_sweep(), tmp_path, parallel=2, pin_cpus=True, max_trials=2, echo=False,
              report=False, compilation_cache=os.environ["CNN_JAX_COMPILATION_CACHE"])
    runs = _runs(tmp_path)
    cpus = len(os.sched_getaffinity(0))
    assert sorted(run["cpus"] for run in runs) == sorted([cpus // 2, cpus - cpus // 2])
    assert "pinned to CPUs" in (tmp_path / "sweep.log").read_text()


LONGER = {"num_epochs": 2, "train_size": 3000}  # 300 steps per epoch: long enough to catch


def _start(workdir: Path) -> subprocess.Popen:
    args = [f"--config={SWEEPS / 'tiny.py'}", "--config.base.dataset=synthetic",
            "--config.base.progress=false",
            *(f"--config.base.{key}={value}" for key, value in LONGER.items()),
            f"--workdir={workdir}", "--noreport", "--parallel=2",
            f"--compilation_cache={os.environ['CNN_JAX_COMPILATION_CACHE']}"]
    log = (workdir.parent / f"{workdir.name}.log").open("a")
    return subprocess.Popen([sys.executable, "-m", "experiments.sweep", *args], cwd=REPO,
                            env=script_env(), stdout=log, stderr=subprocess.STDOUT)


def _statuses(workdir: Path) -> dict[str, str]:
    return {path.parent.name: (read_json(path) or {}).get("status")
            for path in workdir.glob("trials/*/status.json")}


def _wait_for_two_training(workdir: Path, process: subprocess.Popen) -> list[int]:
    """Waits until two trials are running and have logged a step; returns their pids."""
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        running = [trial for trial, status in _statuses(workdir).items() if status == "running"
                   and (workdir / "trials" / trial / "metrics.jsonl").exists()]
        if len(running) == 2:
            return [read_json(workdir / "trials" / t / "trial.json")["runs"][-1]["pid"]
                    for t in running]
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"two trials never ran together: {_statuses(workdir)}")


def _gone(pid: int, timeout: float = 60) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_sigint_and_kill_9_stop_both_trials_and_the_rerun_finishes_exactly(tmp_path):
    """SIGINT to the sweep while two trials train: they save and end interrupted, exit 130.
    Then kill -9 of the rerun's sweep process: its workers stop by themselves (a trial ends
    interrupted, or dead if it had not started training), none is left running. The third run
    finishes the stopped trials with the accuracies of an uninterrupted sweep."""
    workdir = tmp_path / "sweep"
    process = _start(workdir)
    pids = _wait_for_two_training(workdir, process)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130, (tmp_path / "sweep.log").read_text()[-3000:]
    assert all(_gone(pid) for pid in pids)
    statuses = _statuses(workdir)
    assert list(statuses.values()).count("interrupted") >= 1, statuses  # ≤ 1 may have ended
    assert "running" not in statuses.values()

    process = _start(workdir)
    pids = _wait_for_two_training(workdir, process)
    process.kill()
    assert process.wait(timeout=30) == -signal.SIGKILL
    assert all(_gone(pid) for pid in pids), "a worker outlived the killed sweep"
    statuses = {trial: status_of(workdir / "trials" / trial) for trial in _statuses(workdir)}
    assert "running" not in statuses.values(), statuses  # interrupted, or dead: resumable

    stopped = [trial for trial, status in statuses.items() if status in ("interrupted", DEAD)]
    config = tiny_sweep()
    config.base.update(LONGER)
    cache = os.environ["CNN_JAX_COMPILATION_CACHE"]
    resumed = run_sweep(config, workdir, parallel=2, max_trials=4, echo=False, report=False,
                        compilation_cache=cache)
    reference = run_sweep(config, tmp_path / "reference", parallel=1, max_trials=5, echo=False,
                          report=False, compilation_cache=cache)
    assert set(stopped) <= set(resumed.ran) <= set(reference.ran), (stopped, resumed.ran)
    for trial in resumed.ran:
        assert resumed.statuses[trial] == reference.statuses[trial] == "done"
        after_stops = read_json(workdir / "trials" / trial / "results.json")
        uninterrupted = read_json(tmp_path / "reference" / "trials" / trial / "results.json")
        for key in ("test_accuracy_at_best_val", "best_val_accuracy", "final_train_loss"):
            assert after_stops[key] == uninterrupted[key], (trial, key)


def test_the_throughput_table_compares_only_when_there_is_something_to_compare():
    from cnn_jax.sweep.throughput import format_table

    def row(workers, seconds):
        return {"workers": workers, "trials": 6, "seconds": seconds, "speedup": 171.0 / seconds,
                "trials_per_minute": 360 / seconds}

    load = {"before": (1.0, 1.0, 1.0), "after": (2.0, 2.0, 2.0)}
    one = format_table({"rows": [row(2, 162.7)], "identical": True, "load": load})
    assert "one run, nothing to compare" in one and "| 2 | 6 | 162.7 | 2.21 | 1.05× |" in one
    two = format_table({"rows": [row(1, 171.0), row(2, 162.7)], "identical": False,
                        "load": load})
    assert "NOT identical" in two and "| 1 | 6 | 171.0 | 2.11 | 1.00× |" in two
