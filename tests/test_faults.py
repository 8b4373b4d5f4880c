"""Reliability: divergence, kills and signals, determinism, workdir and disk faults, missing or
corrupt data — each through the training script or `train_and_evaluate` as a user meets it.

Kills are placed deterministically by a training callback (`conftest.kill_after`; scripts run
through tests/fault_driver.py): the process sends itself a signal (default SIGKILL) right after
step N.
"""

from __future__ import annotations

import errno
import json
import os
import signal

import numpy as np
import pytest
from conftest import (
    TIMING_KEYS,
    TINY,
    assert_trees_equal,
    checkpoint,
    leaves,
    read_records,
    read_tensorboard_scalars,
    run_script,
    stale_files,
    tiny_args,
    tiny_config,
    without_timing,
)

from cnn_jax.train import WorkdirError, train_and_evaluate
from cnn_jax.train.logs import atomic_write_json, read_jsonl

pytestmark = pytest.mark.usefixtures("train_env")

# Mid-epoch checkpoints every 7 steps (epochs are 40 steps): 7, 14, ..., 35, 40, 47, ...
CHECKPOINTS = ("--config.checkpoint_every_steps=7", "--config.checkpoint_keep=3")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the script: the run every interrupted one must reproduce."""
    workdir = tmp_path_factory.mktemp("reference") / "run"
    result = run_script(*tiny_args(workdir, *CHECKPOINTS))
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def assert_same_run(workdir, expected):
    """Bitwise the same final state; the same records, results and TensorBoard scalars."""
    assert json.loads((workdir / "status.json").read_text())["status"] == "done"
    assert_trees_equal(checkpoint(workdir)[1], checkpoint(expected)[1])
    assert read_records(workdir) == read_records(expected)
    results = json.loads((workdir / "results.json").read_text())
    assert without_timing(results) == without_timing(
        json.loads((expected / "results.json").read_text()))

    def scalars(path):
        tags = read_tensorboard_scalars(path / "tensorboard")
        return {tag: values for tag, values in tags.items()
                if tag.split("/")[-1] not in TIMING_KEYS}

    assert scalars(workdir) == scalars(expected)
    assert not stale_files(workdir)


@pytest.mark.slow
def test_sigkill_between_checkpoints_then_rerun_is_identical(reference, tmp_path):
    workdir = tmp_path / "run"
    args = tiny_args(workdir, *CHECKPOINTS)
    # Killed at step 17, mid-epoch, three steps after the checkpoint of step 14.
    killed = run_script(*args, fault_after=17)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert json.loads((workdir / "status.json").read_text())["status"] == "running"
    assert not (workdir / "results.json").exists()
    assert checkpoint(workdir)[0] == 14
    assert max(r["step"] for r in read_jsonl(workdir / "metrics.jsonl")) == 10
    # What a kill in the middle of a write leaves: a torn log line and a temp file.
    with (workdir / "metrics.jsonl").open("a") as file:
        file.write('{"kind": "train", "step": 1')
    (workdir / ".results.json.x1y2.tmp").write_text("{")

    # The rerun of the same command is killed again, on the last step of epoch 1: after the
    # checkpoint of step 35, before the epoch's record and checkpoint are written.
    killed = run_script(*args, fault_after=40)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert "resuming" in killed.stdout and checkpoint(workdir)[0] == 35
    assert not [r for r in read_jsonl(workdir / "metrics.jsonl") if r["kind"] == "epoch"]

    done = run_script(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming" in done.stdout
    assert_same_run(workdir, reference)


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_rerun_is_identical(reference, tmp_path):
    workdir = tmp_path / "run"
    args = tiny_args(workdir, *CHECKPOINTS)
    stopped = run_script(*args, fault_after=30, fault_signal="SIGTERM")
    assert stopped.returncode == 130, stopped.stderr[-2000:]
    assert "stopped by SIGTERM at step 30" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    status = json.loads((workdir / "status.json").read_text())
    assert status["status"] == "interrupted" and status["step"] == 30
    assert json.loads((workdir / "results.json").read_text())["status"] == "interrupted"
    assert checkpoint(workdir)[0] == 30  # saved on the way out, between regular checkpoints
    done = run_script(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_run(workdir, reference)


def test_same_config_and_seed_give_the_same_run(tmp_path):
    first = train_and_evaluate(tiny_config(num_epochs=1), tmp_path / "a")
    second = train_and_evaluate(tiny_config(num_epochs=1), tmp_path / "b")
    assert without_timing(first) == without_timing(second)
    assert read_records(tmp_path / "a") == read_records(tmp_path / "b")
    assert_trees_equal(checkpoint(tmp_path / "a")[1], checkpoint(tmp_path / "b")[1])
    other = train_and_evaluate(tiny_config(num_epochs=1, seed=1), tmp_path / "c")
    assert without_timing(other) != without_timing(first)


# A linear conv layer with η = 10⁶ overflows to NaN at step 4. NaN checks every 50 steps would
# first look at step 50, but the state is checked before every save too: the checkpoint of step 3
# is saved, the one of step 6 is refused and the run stops there.
DIVERGING = {"learning_rate": 1e6, "nan_check_every": 50, "checkpoint_every_steps": 3}


def diverging_config():
    config = tiny_config(**DIVERGING)
    config.model.layers[0]["activation"] = "identity"
    return config


def test_divergence_stops_with_status_diverged(tmp_path):
    workdir = tmp_path / "run"
    results = train_and_evaluate(diverging_config(), workdir)
    assert results["status"] == "diverged" and results["step"] == 6
    assert "NaN or inf" in results["reason"]
    assert json.loads((workdir / "results.json").read_text())["status"] == "diverged"
    assert json.loads((workdir / "status.json").read_text())["status"] == "diverged"
    records = read_jsonl(workdir / "metrics.jsonl")
    assert records[0]["kind"] == "shapes" and records[-1]["kind"] == "diverged"
    step, state = checkpoint(workdir)
    assert step == 3  # the last good state; no non-finite state is ever saved
    assert all(np.isfinite(leaf).all() for leaf in leaves(state).values()
               if np.issubdtype(leaf.dtype, np.floating))


def test_divergence_through_the_script_exits_1_keeping_metrics(tmp_path):
    config = tmp_path / "diverging.py"
    config.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(TINY.parent)!r})\n"
        "from tiny import get_config as tiny\n\n\n"
        "def get_config():\n"
        "    config = tiny()\n"
        "    config.model.layers[0]['activation'] = 'identity'\n"
        f"    config.update({DIVERGING!r})\n"
        "    return config\n")
    workdir = tmp_path / "run"
    result = run_script(f"--config={config}", f"--workdir={workdir}")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "diverged" in result.stderr and "Traceback" not in result.stderr
    assert json.loads((workdir / "status.json").read_text())["status"] == "diverged"
    assert checkpoint(workdir)[0] == 3


def test_workdir_of_another_config_is_refused_unless_overwrite(tmp_path):
    workdir = tmp_path / "run"
    train_and_evaluate(tiny_config(num_epochs=1), workdir)
    result = run_script(*tiny_args(workdir, "--config.num_epochs=1", "--config.learning_rate=0.2"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and "learning_rate" in error and "--overwrite" in error
    # Keys that only change how a run is watched do not count.
    assert train_and_evaluate(tiny_config(num_epochs=1, log_every_steps=5), workdir)["status"] \
        == "done"
    results = train_and_evaluate(tiny_config(num_epochs=1, learning_rate=0.2), workdir,
                                 overwrite=True)
    assert results["status"] == "done"
    assert json.loads((workdir / "config.json").read_text())["learning_rate"] == 0.2


def test_unwritable_workdir_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")  # tests run as root: chmod would not stop writes
    workdir = blocker / "run"
    result = run_script(*tiny_args(workdir))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: workdir ") and "cannot be written" in error
    assert "Not a directory" in error


def test_workdir_in_use_by_another_run_is_refused(tmp_path):
    import fcntl

    workdir = tmp_path / "run"
    workdir.mkdir()
    with open(workdir / ".lock", "w") as held:
        held.write("4242")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)  # as a running training process holds it
        with pytest.raises(WorkdirError, match=r"in use by another run \(pid 4242\)"):
            train_and_evaluate(tiny_config(), workdir)
    assert not (workdir / "config.json").exists()
    assert train_and_evaluate(tiny_config(num_epochs=1), workdir)["status"] == "done"


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(args[0]) if args else None)


def test_disk_full_at_start_gives_a_clear_error_and_no_partial_file(tmp_path, monkeypatch):
    workdir = tmp_path / "run"
    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(WorkdirError, match="No space left on device"):
        train_and_evaluate(tiny_config(), workdir)
    assert not (workdir / "config.json").exists() and not stale_files(workdir)


def test_disk_full_during_training_gives_a_clear_error(tmp_path, monkeypatch):
    from cnn_jax.train.checkpoints import Checkpointer

    workdir = tmp_path / "run"
    real_save = Checkpointer.save

    def save(self, state, score=None):
        if int(state.step) > 7:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.directory))
        return real_save(self, state, score)

    monkeypatch.setattr(Checkpointer, "save", save)
    with pytest.raises(WorkdirError) as caught:
        train_and_evaluate(tiny_config(checkpoint_every_steps=7), workdir)
    assert "No space left on device" in str(caught.value) and str(workdir) in str(caught.value)
    assert json.loads((workdir / "status.json").read_text())["status"] == "failed"
    assert read_jsonl(workdir / "metrics.jsonl")[0]["kind"] == "shapes"
    monkeypatch.setattr(Checkpointer, "save", real_save)
    # Space again: the same call resumes from step 7 and finishes.
    assert train_and_evaluate(tiny_config(checkpoint_every_steps=7), workdir)["status"] == "done"


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    atomic_write_json(path, {"status": "done"})
    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(OSError):
        atomic_write_json(path, {"status": "half"})
    assert json.loads(path.read_text()) == {"status": "done"}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def check_data_error(result, *needles):
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors, result.stderr[-2000:]
    text = result.stderr[result.stderr.index(errors[0]):]
    for needle in needles:
        assert needle in text, (needle, text)


def test_idx_folder_without_files_names_them(tmp_path):
    empty = tmp_path / "idx"
    empty.mkdir()
    result = run_script(*tiny_args(tmp_path / "run", "--config.dataset=idx",
                                   f"--config.idx_dir={empty}"))
    check_data_error(result, str(empty), "train-images-idx3-ubyte")


def test_corrupt_idx_file_is_named(tmp_path):
    from cnn_jax.data import write_idx

    folder = tmp_path / "idx"
    folder.mkdir()
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(300, np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((50, 28, 28), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(50, np.uint8))
    (folder / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    result = run_script(*tiny_args(tmp_path / "run", "--config.dataset=idx",
                                   f"--config.idx_dir={folder}", "--config.train_size=0",
                                   "--config.test_size=0"))
    check_data_error(result, str(folder / "train-images-idx3-ubyte"))


def test_unprepared_tfds_dataset_names_the_path_and_the_command(tmp_path):
    empty = tmp_path / "tfds"
    empty.mkdir()
    result = run_script(*tiny_args(tmp_path / "run", "--config.dataset=tfds:mnist",
                                   f"--config.data_dir={empty}", "--config.train_size=0",
                                   "--config.test_size=0"))
    check_data_error(result, str(empty), "download_and_prepare")
