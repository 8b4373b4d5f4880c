"""Checkpoints: the best one is the best-scored (also after a restart), and a corrupt newest one
is reported and skipped for the newest intact one."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import (
    REPO,
    assert_trees_equal,
    checkpoint,
    read_records,
    script_env,
    tiny_config,
    without_timing,
)
from orbax.checkpoint._src.path import temporary_paths

from cnn_jax.inference import load_run
from cnn_jax.network import Network
from cnn_jax.presets import course_3maps
from cnn_jax.train import train_and_evaluate
from cnn_jax.train.checkpoints import Checkpointer, restore_newest_intact
from cnn_jax.train.state import create_state

pytestmark = pytest.mark.usefixtures("train_env")


def states(count: int):
    network = Network.from_layers(course_3maps())
    config = tiny_config()
    base = create_state(network, config, (28, 28, 1), steps_per_epoch=10)
    return [base.replace(step=jnp.asarray(step, jnp.int32),
                         params={**base.params, "dense1": {
                             **base.params["dense1"], "bias": jnp.full((10,), float(step))}})
            for step in range(1, count + 1)]


def test_best_step_is_the_best_scored_checkpoint_also_after_a_restart(tmp_path):
    saved = states(5)
    checkpointer = Checkpointer(tmp_path, keep=2)
    for state, score in zip(saved, [0.5, 0.9, None, 0.9, 0.7], strict=True):
        checkpointer.save(state, score=score)  # None: a mid-epoch checkpoint
    assert checkpointer.best_step() == 2  # the earliest of the two best scores, not the latest
    checkpointer.close()
    reopened = Checkpointer(tmp_path, keep=2)
    assert reopened.best_step() == 2 and reopened.latest_step() == 5
    restored = reopened.restore(saved[0], reopened.best_step())
    np.testing.assert_array_equal(restored.params["dense1"]["bias"], np.full(10, 2.0))
    reopened.close()


def test_only_mid_epoch_checkpoints_mean_the_latest_is_the_best(tmp_path):
    checkpointer = Checkpointer(tmp_path)
    for state in states(2):
        checkpointer.save(state)
    assert checkpointer.best_step() == 2
    checkpointer.close()


def corrupt_newest(workdir, step: int | None = None) -> int:
    """Truncates every data file of the newest checkpoint of a run (or of `step`); returns its
    step."""
    step = step if step is not None else max(
        int(path.name) for path in (workdir / "checkpoints").iterdir() if path.name.isdigit())
    files = [path for path in (workdir / "checkpoints" / str(step)).rglob("*")
             if path.is_file() and path.stat().st_size > 0 and "ocdbt" in str(path)]
    assert files
    for path in files:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return step


def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before(tmp_path, capsys):
    saved = states(3)
    checkpointer = Checkpointer(tmp_path, keep=3)
    for state in saved:
        checkpointer.save(state, score=0.1 * int(state.step))
    checkpointer.close()
    assert corrupt_newest(tmp_path) == 3
    checkpointer = Checkpointer(tmp_path, keep=3)
    step, (state,) = restore_newest_intact([checkpointer], [saved[0]])
    checkpointer.close()
    assert step == 2 and int(state.step) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "checkpoints/3" in lines[0] and "older checkpoint" in lines[0]


def test_a_run_whose_newest_checkpoint_is_corrupt_resumes_from_the_one_before(tmp_path, capsys):
    """Stopped at step 60 with checkpoints at 40 (epoch end), 50 and 60: step 60's files are
    truncated; the rerun resumes from 50 and ends as an uninterrupted run."""
    config = tiny_config(checkpoint_every_steps=10, checkpoint_keep=3)
    reference = train_and_evaluate(config, tmp_path / "reference")
    workdir = tmp_path / "run"
    stopped = train_and_evaluate(config.copy_and_resolve_references(), workdir,
                                 hooks=[_stop_at(60)])
    assert stopped["status"] == "interrupted" and checkpoint(workdir)[0] == 60
    corrupt_newest(workdir)
    capsys.readouterr()
    resumed = train_and_evaluate(config, workdir)
    out = capsys.readouterr()
    assert "resuming" in out.out and "from step 50" in out.out
    assert "checkpoints/60" in out.err and "cannot be read" in out.err
    assert "Traceback" not in out.err
    assert without_timing(resumed) == without_timing(reference)
    assert read_records(workdir) == read_records(tmp_path / "reference")
    assert_trees_equal(checkpoint(workdir)[1], checkpoint(tmp_path / "reference")[1])
    assert json.loads((workdir / "status.json").read_text())["status"] == "done"


def _stop_at(step: int):
    from conftest import kill_after

    return kill_after(step, "SIGTERM")


def test_opening_removes_a_killed_saves_temporary_folder_before_it_returns(tmp_path, monkeypatch):
    """Orbax cleans up in a background thread; a slow cleanup must still be over when the
    constructor returns, or a process that exits at once prints that thread's traceback."""
    checkpointer = Checkpointer(tmp_path)
    checkpointer.save(states(1)[0], score=0.5)
    checkpointer.close()
    unfinished = tmp_path / "checkpoints" / "2.orbax-checkpoint-tmp-1700000000"
    (unfinished / "default").mkdir(parents=True)
    (unfinished / "default" / "partial").write_bytes(b"\0" * 64)
    cleanup = temporary_paths.cleanup_temporary_paths

    async def slow_cleanup(*args, **kwargs):
        await asyncio.sleep(0.5)
        return await cleanup(*args, **kwargs)

    monkeypatch.setattr(temporary_paths, "cleanup_temporary_paths", slow_cleanup)
    reopened = Checkpointer(tmp_path)
    assert not unfinished.exists()
    assert reopened.all_steps() == [1]
    reopened.close()


RESTORE_CORRUPT_FIVE_TIMES = """
import os
import sys
sys.path.insert(0, "tests")
from test_checkpoints import states
from cnn_jax.train.checkpoints import Checkpointer, restore_newest_intact
for attempt in range(5):
    checkpointer = Checkpointer(sys.argv[1], keep=3)
    step, _ = restore_newest_intact([checkpointer], [states(1)[0]])
    checkpointer.close()
    assert step == 2, step
    os.rename(f"{sys.argv[1]}/checkpoints/corrupt-3", f"{sys.argv[1]}/checkpoints/3")  # again
"""


def test_a_corrupt_checkpoint_is_reported_in_one_line_without_orbaxs_leftover_tracebacks(tmp_path):
    """A failed read leaves TensorStore reads running after Orbax closed their event loop; in a
    plain process (no pytest hooks) they printed a traceback each, at random, most runs."""
    checkpointer = Checkpointer(tmp_path, keep=3)
    for state in states(3):
        checkpointer.save(state, score=0.1 * int(state.step))
    checkpointer.close()
    corrupt_newest(tmp_path)
    done = subprocess.run([sys.executable, "-c", RESTORE_CORRUPT_FIVE_TIMES, str(tmp_path)],
                          cwd=REPO, env=script_env(), capture_output=True, text=True,
                          timeout=300, check=False)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(lines) == 5 and all("cannot be read" in line for line in lines), done.stderr[-3000:]


def test_resuming_moves_a_corrupt_checkpoint_aside_and_saves_the_retrained_step(tmp_path, capsys):
    """Issue 21: 2 epochs (checkpoints at steps 40 and 80), step 80's files truncated, rerun with
    3 epochs: it resumes from 40, and the corrupt folder must go to checkpoints/corrupt-80 so
    that the retrained step 80 is saved (bitwise the state of the first run) and can be loaded."""
    workdir = tmp_path / "run"
    train_and_evaluate(tiny_config(checkpoint_keep=3), workdir)
    step, original = checkpoint(workdir)
    assert step == 80
    corrupt_newest(workdir)
    capsys.readouterr()
    resumed = train_and_evaluate(tiny_config(checkpoint_keep=3, num_epochs=3), workdir)
    out = capsys.readouterr()
    assert resumed["status"] == "done" and "from step 40" in out.out
    assert "checkpoints/80" in out.err and "corrupt-80" in out.err
    assert (workdir / "checkpoints" / "corrupt-80").is_dir()
    assert_trees_equal(checkpoint(workdir, 80)[1], original)
    for request in ("best", "latest", 80):
        load_run(workdir, checkpoint=request)


def test_loading_a_corrupt_best_checkpoint_falls_back_to_the_newest_intact_one(tmp_path, capsys):
    workdir = tmp_path / "run"
    train_and_evaluate(tiny_config(checkpoint_keep=3), workdir)
    best = load_run(workdir).step
    corrupt_newest(workdir, best)
    capsys.readouterr()
    model = load_run(workdir)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    intact = max(step for step in (40, 80) if step != best)
    assert model.step == intact
    assert len(lines) == 1 and lines[0].startswith("warning:"), lines
    assert f"checkpoints/{best}" in lines[0] and f"step {intact}" in lines[0]
    with pytest.raises(Exception, match="cannot be read"):
        load_run(workdir, checkpoint=best)  # a step asked for by number: no substitute
