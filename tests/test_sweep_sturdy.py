"""Sweeps as sturdy as single runs (issue 21): a Ctrl-C at a trial's finishing step stops the
sweep, architecture axes get short trial ids, unusable workdirs are refused in one line, a
sweep-level lock, dead trials are told apart from running ones.

The end-to-end sweep is configs/sweeps/tiny.py on the synthetic data set (1 epoch of 30 steps per
trial, trials in the order k5-s1-pmax, k5-s1-pnone, ...).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import REPO, SWEEPS, script_command, script_env

from cnn_jax.train.logs import read_json

pytestmark = pytest.mark.usefixtures("train_env")

STEPS_PER_TRIAL = 30  # 300 training images in batches of 10, one epoch


def sweep_command(workdir: Path, *extra: str, fault_after: int | None = None,
                  fault_signal: str = "SIGKILL") -> list[str]:
    args = (f"--config={SWEEPS / 'tiny.py'}", "--config.base.dataset=synthetic",
            "--config.base.progress=false", f"--workdir={workdir}", "--noreport", *extra)
    return script_command("experiments.sweep", args, fault_after, fault_signal)


def run_command(command: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, env=script_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.mark.slow
def test_sigint_at_a_trials_last_step_stops_the_sweep(tmp_path):
    """SIGINT right after the last training step of the first trial, while it evaluates and
    finishes: the trial's own stop handler takes the signal, and the sweep must hear of it too
    (exit 130, no further trial started), not run every remaining trial."""
    workdir = tmp_path / "sweep"
    result = run_command(sweep_command(workdir, fault_after=STEPS_PER_TRIAL,
                                       fault_signal="SIGINT"))
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
