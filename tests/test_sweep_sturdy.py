"""Sweeps as sturdy as single runs (issue 21): a Ctrl-C at a trial's finishing step stops the
sweep, architecture axes get short trial ids, unusable workdirs are refused in one line, a
sweep-level lock, dead trials are told apart from running ones.

The end-to-end sweep is configs/sweeps/tiny.py on the synthetic data set (1 epoch of 30 steps per
trial, trials in the order k5-s1-pmax, k5-s1-pnone, ...).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import SWEEPS, read_csv, run_script

from cnn_jax.train.logs import read_json

pytestmark = pytest.mark.usefixtures("train_env")

STEPS_PER_TRIAL = 30  # 300 training images in batches of 10, one epoch


def sweep(workdir: Path, *extra: str, fault_after: int | None = None,
          fault_signal: str = "SIGKILL", timeout: float = 240) -> subprocess.CompletedProcess:
    """`python -m experiments.sweep` on configs/sweeps/tiny.py with the synthetic data set."""
    args = (f"--config={SWEEPS / 'tiny.py'}", "--config.base.dataset=synthetic",
            "--config.base.progress=false", f"--workdir={workdir}", "--noreport", *extra)
    return run_script(*args, module="experiments.sweep", timeout=timeout,
                      fault_after=fault_after, fault_signal=fault_signal)


@pytest.mark.slow
def test_sigint_at_a_trials_last_step_stops_the_sweep(tmp_path):
    """SIGINT right after the last training step of the first trial, while it evaluates and
    finishes: the trial's own stop handler takes the signal, and the sweep must hear of it too
    (exit 130, no further trial started), not run every remaining trial."""
    workdir = tmp_path / "sweep"
    result = sweep(workdir, fault_after=STEPS_PER_TRIAL, fault_signal="SIGINT")
    assert result.returncode == 130, result.stdout[-2000:] + result.stderr[-2000:]
    first = read_json(workdir / "trials" / "k5-s1-pmax-seed0" / "status.json")["status"]
    assert first in ("done", "interrupted")
    others = [read_json(path)["status"] for path in workdir.glob("trials/*/status.json")
              if path.parent.name != "k5-s1-pmax-seed0"]
    assert others and set(others) <= {"pending", "invalid"}, others
    assert "sweep interrupted" in (workdir / "sweep.log").read_text()


def test_a_signal_taken_by_an_inner_stop_handler_reaches_the_outer_one():
    import os
    import signal

    from cnn_jax.train.interrupts import StopRequests

    with StopRequests() as outer:
        with StopRequests() as inner:
            os.kill(os.getpid(), signal.SIGINT)
            assert inner.requested and not outer.requested
        assert outer.requested and outer.signal_name == "SIGINT"
    with StopRequests() as outer:
        with StopRequests():
            pass
        assert not outer.requested


def architectures() -> list[list[dict]]:
    """Two whole layer lists of the tiny sweep's network (k5 and k9 conv1), as a user writes
    an architecture axis."""
    import copy

    from conftest import tiny_sweep

    first = [dict(layer) for layer in tiny_sweep().base.model.layers]
    second = copy.deepcopy(first)
    second[0]["kernel"] = 9
    return [first, second]


def test_an_axis_of_whole_architectures_gets_short_stable_trial_ids(tmp_path):
    """An axis over `model.layers` with full layer lists made ids of hundreds of characters
    (OSError: File name too long); they must be short, distinct, and the same on every load."""
    from conftest import sweep_of

    from cnn_jax.sweep import run_sweep
    from cnn_jax.sweep.grid import load_sweep

    config = sweep_of([{"product": {"model.layers": architectures()}}], seeds=[0, 1])
    ids = [trial.id for trial in load_sweep(config).trials()]
    assert len(set(ids)) == 4 and all(len(i) <= 40 for i in ids), ids
    assert ids == [trial.id for trial in load_sweep(
        sweep_of([{"product": {"model.layers": architectures()}}], seeds=[0, 1])).trials()]
    assert all(i.startswith("layers") for i in ids)
    outcome = run_sweep(config, tmp_path, max_trials=0, report=False, echo=False)
    assert outcome.counts() == {"pending": 4}
    assert sorted(p.name for p in (tmp_path / "trials").iterdir()) == sorted(ids)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("script", ["experiments.sweep", "experiments.report"])
def test_a_file_as_workdir_is_one_error_line(tmp_path, script):
    workdir = tmp_path / "a_file"
    workdir.write_text("not a folder")
    result = (sweep(workdir) if script == "experiments.sweep"
              else run_script(f"--workdir={workdir}", module=script, timeout=240))
    lines = error_lines(result)
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error:") and "a_file" in lines[0] and "directory" in lines[0]
    assert workdir.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("script", ["experiments.sweep", "experiments.report"])
def test_a_read_only_workdir_is_one_error_line(tmp_path, script):
    workdir = tmp_path / "ro"
    workdir.mkdir()
    (workdir / "sweep.json").write_text("{}")
    workdir.chmod(0o555)
    try:
        result = (sweep(workdir) if script == "experiments.sweep"
                  else run_script(f"--workdir={workdir}", module=script, timeout=240))
    finally:
        workdir.chmod(0o755)
    lines = error_lines(result)
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert "cannot be written" in lines[0]


def test_a_second_sweep_in_the_same_workdir_is_refused_at_once(tmp_path):
    """While a sweep holds the workdir (here this process, through the sweep's lock), the same
    command is refused with one line naming the holder, and writes nothing."""
    from cnn_jax.train.workdir import WorkdirLock

    workdir = tmp_path / "sweep"
    with WorkdirLock(workdir, kind="sweep"):
        before = sorted(p.name for p in workdir.iterdir())
        result = sweep(workdir, timeout=120)
        after = sorted(p.name for p in workdir.iterdir())
    lines = error_lines(result)
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert f"in use by another sweep (pid {os.getpid()})" in lines[0]
    assert before == after == [".lock"]


@pytest.mark.slow
def test_a_trial_of_a_killed_sweep_shows_as_dead_and_a_rerun_resumes_it(tmp_path):
    """kill -9 of the sweep at step 12 of its first trial: that trial's status.json says
    running forever; results, report and the outcome must call it dead, and a rerun resumes it."""
    from conftest import tiny_sweep

    from cnn_jax.sweep import run_sweep
    from cnn_jax.sweep.report import build_report
    from cnn_jax.sweep.results import write_results

    workdir = tmp_path / "sweep"
    killed = sweep(workdir, fault_after=12)
    assert killed.returncode == -9, killed.stderr[-2000:]
    first = workdir / "trials" / "k5-s1-pmax-seed0"
    assert read_json(first / "status.json")["status"] == "running"
    write_results(workdir)
    rows = {row["trial"]: row for row in read_csv(workdir / "results.csv")}
    assert rows["k5-s1-pmax-seed0"]["status"] == "dead"
    assert "no longer alive" in rows["k5-s1-pmax-seed0"]["reason"]
    assert "1 dead" in Path(build_report(workdir)).read_text()
    outcome = run_sweep(tiny_sweep(), workdir, max_trials=1, report=False, echo=False)
    assert outcome.ran == ["k5-s1-pmax-seed0"] and outcome.statuses[outcome.ran[0]] == "done"
    assert "resuming it" in (workdir / "sweep.log").read_text()


def test_a_sweep_whose_every_trial_is_impossible_is_refused_and_writes_nothing(tmp_path):
    """Kernels of 29 and 30 on 28×28 images: floor((28 − k)/1) + 1 ≤ 0 for both."""
    from conftest import sweep_of

    from cnn_jax.sweep import SweepError, run_sweep

    config = sweep_of([{"product": {"model.layers[0].kernel": [29, 30]}}])
    with pytest.raises(SweepError, match="all 2 trials are impossible"):
        run_sweep(config, tmp_path / "sweep", echo=False)
    assert not (tmp_path / "sweep").exists()


def test_a_sweep_without_axes_says_it_trains_the_base_config(tmp_path):
    from conftest import sweep_of

    from cnn_jax.sweep import run_sweep

    run_sweep(sweep_of([], seeds=[0, 1]), tmp_path, max_trials=0, report=False, echo=False)
    assert "config.axes is empty: every trial is the base config, once per seed (2 trials)" in (
        tmp_path / "sweep.log").read_text()


def test_a_redirected_sweep_gets_no_progress_bar_carriage_returns(tmp_path, capfd):
    from conftest import tiny_sweep

    from cnn_jax.sweep import run_sweep

    run_sweep(tiny_sweep(), tmp_path, max_trials=0, report=False, echo=True)
    out, err = capfd.readouterr()
    assert "\r" not in out + err and "running 0" in out


def test_seeds_given_as_a_number_on_the_command_line_are_a_count():
    result = run_script(f"--config={SWEEPS / 'tiny.py'}", "--config.seeds=3",
                        module="experiments.shapes", timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--config.seeds=3 is read as 3 seeds (0, 1, 2)" in result.stderr
    assert "k5-s1-pmax-seed2" in result.stdout and "seed3" not in result.stdout
