"""Same-shape trials as one vmapped program (`cnn_jax.train.vmapped`, sweep executor 'vmap').

The independent truth is one `train_and_evaluate` per trial: a vmapped group must reproduce its
metrics and parameters up to float rounding (a batched convolution is another XLA program),
its divergence and its resume behaviour.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest
from conftest import (
    REPO,
    assert_trees_equal,
    checkpoint,
    kill_after,
    leaves,
    read_csv,
    read_records,
    script_env,
    sweep_of,
    tiny_config,
    tiny_sweep,
    without_timing,
)

from cnn_jax.config import load_for_config
from cnn_jax.sweep import run_sweep
from cnn_jax.sweep.grid import Trial
from cnn_jax.sweep.plan import TrialPlan
from cnn_jax.sweep.run import pick_executor, vmap_groups
from cnn_jax.sweep.worker import run_group
from cnn_jax.train import GroupError, program_key, train_and_evaluate, train_vmapped
from cnn_jax.train.devices import model_mesh
from cnn_jax.train.logs import read_json, read_jsonl, write_status

VALUES = [{"learning_rate": 0.03}, {"learning_rate": 0.1, "l2": 5.0},
          {"learning_rate": 0.1, "seed": 3}]
FLOAT_RTOL = 1e-4


def group_configs() -> list[ml_collections.ConfigDict]:
    """The tiny net (with dropout) at three learning rates / λ / seeds."""
    return [tiny_config(**values) for values in VALUES]


@pytest.fixture(scope="module")
def runs(train_env, tmp_path_factory):
    """The group trained together, and each of its configs trained alone."""
    root = tmp_path_factory.mktemp("vmapped")
    configs = group_configs()
    alone = [root / f"alone{i}" for i in range(len(configs))]
    together = [root / f"together{i}" for i in range(len(configs))]
    dataset = load_for_config(configs[0])  # one data set for every seed
    alone_results = [train_and_evaluate(c, w, dataset=dataset)
                     for c, w in zip(configs, alone, strict=True)]
    together_results = train_vmapped(configs, together, dataset=dataset)
    return {"configs": configs, "dataset": dataset, "alone": alone, "together": together,
            "alone_results": alone_results, "together_results": together_results}


def assert_close_records(a: Path, b: Path) -> None:
    left, right = read_records(a, ("epoch",)), read_records(b, ("epoch",))
    assert len(left) == len(right) > 0
    for x, y in zip(left, right, strict=True):
        for key in ("train_loss", "train_accuracy", "val_accuracy", "test_accuracy"):
            assert y[key] == pytest.approx(x[key], rel=FLOAT_RTOL, abs=1e-6), key


def test_a_group_reproduces_one_run_per_trial(runs):
    for alone, together, result in zip(runs["alone"], runs["together"],
                                       runs["together_results"], strict=True):
        assert result["status"] == "done" and result["vmapped_models"] == 3
        assert read_json(together / "status.json")["status"] == "done"
        assert read_jsonl(together / "metrics.jsonl")[0]["kind"] == "shapes"
        assert_close_records(alone, together)
        step, state = checkpoint(together)
        alone_step, alone_state = checkpoint(alone)
        assert step == alone_step == 80
        expected = leaves(alone_state["params"])
        for key, value in leaves(state["params"]).items():
            np.testing.assert_allclose(value, expected[key], rtol=1e-3, atol=1e-5, err_msg=key)
    losses = [r["final_train_loss"] for r in runs["together_results"]]
    assert len(set(losses)) == 3  # learning rate, λ and seed each changed the training


def test_fused_scan_chunks_as_on_an_accelerator_give_the_same_training(runs, tmp_path):
    """strategy 'scan' (the GPU/TPU default): chunks of 15 steps and a tail of 10 per epoch of
    40, fused by `lax.scan` inside the vmapped program; the same numbers as one step per call."""
    configs = [config.copy_and_resolve_references() for config in runs["configs"]]
    for config in configs:
        config.strategy, config.log_every_steps = "scan", 15
    workdirs = [tmp_path / f"m{i}" for i in range(len(configs))]
    results = train_vmapped(configs, workdirs, dataset=runs["dataset"])
    assert [r["status"] for r in results] == ["done"] * 3
    for workdir, reference in zip(workdirs, runs["together"], strict=True):
        assert_close_records(reference, workdir)
        # chunks end at 15, 30, 40 | 55, 70, 80; a record where a multiple of 15 was passed
        assert [r["step"] for r in read_records(workdir, ("train",))] == [15, 30, 55, 70, 80]


SPLIT_OVER_DEVICES = """
import json, sys
sys.path.insert(0, "tests")
from conftest import tiny_config
from test_vmapped import VALUES
from cnn_jax.train import train_vmapped
from cnn_jax.config import load_for_config
configs = [tiny_config(**values) for values in VALUES]
results = train_vmapped(configs, sys.argv[1:], dataset=load_for_config(configs[0]))
print(json.dumps([r["status"] for r in results]))
"""


def test_with_four_devices_three_models_are_split_over_three(runs, tmp_path):
    """`model_mesh`: the most devices that split the models evenly; the same training."""
    workdirs = [str(tmp_path / f"m{i}") for i in range(3)]
    result = subprocess.run(
        [sys.executable, "-c", SPLIT_OVER_DEVICES, *workdirs], cwd=REPO, capture_output=True,
        text=True, timeout=300,
        env=script_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "devices: 4 × CPU" in result.stdout
    assert "3 models in one vmapped program, split over 3 devices" in result.stdout
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["done"] * 3
    for workdir, reference in zip(workdirs, runs["together"], strict=True):
        assert_close_records(reference, Path(workdir))


def test_model_mesh_uses_the_most_devices_that_divide_the_models():
    devices = list(range(8))  # stand-ins: the mesh only arranges them
    sizes = {models: getattr(model_mesh(models, devices), "size", 1)
             for models in (1, 3, 7, 20, 64)}
    assert sizes == {1: 1, 3: 3, 7: 7, 20: 5, 64: 8}
    assert model_mesh(7, devices[:4]) is None  # no divisor of 7 among 2..4
    assert model_mesh(5, jax.local_devices()) is None  # one CPU device here


def test_a_finished_group_returns_its_results_without_training(runs):
    again = train_vmapped(runs["configs"], runs["together"], dataset=runs["dataset"])
    assert [without_timing(r) for r in again] == \
        [without_timing(r) for r in runs["together_results"]]


def test_configs_that_differ_in_more_than_values_are_refused(tmp_path):
    other = tiny_config(batch_size=20)
    with pytest.raises(GroupError, match="batch_size"):
        train_vmapped([tiny_config(), other], [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(GroupError, match="seed"):  # synthetic images depend on the seed
        train_vmapped([tiny_config(), tiny_config(seed=1)], [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(GroupError, match="twice"):
        train_vmapped([tiny_config(), tiny_config()], [tmp_path / "a", tmp_path / "a"])
    assert not (tmp_path / "a").exists()
    assert program_key(tiny_config(learning_rate=0.5, l2=1.0)) == program_key(tiny_config())


def test_a_diverging_model_ends_diverged_while_the_others_train_on(train_env, tmp_path):
    """The sequential divergence of test_faults (identity activation, η = 10⁶, a check every 3
    steps) inside a group: same step, reason and last good checkpoint; its partner is unharmed."""
    configs = [tiny_config(learning_rate=lr, nan_check_every=50, checkpoint_every_steps=3)
               for lr in (1e6, 0.05)]
    for config in configs:
        config.model.layers[0]["activation"] = "identity"
    alone = [train_and_evaluate(c, tmp_path / f"alone{i}") for i, c in enumerate(configs)]
    together = train_vmapped(configs, [tmp_path / "t0", tmp_path / "t1"])
    assert alone[0]["status"] == together[0]["status"] == "diverged"
    assert together[0]["step"] == alone[0]["step"] == 6
    assert together[0]["reason"] == alone[0]["reason"]
    assert checkpoint(tmp_path / "t0")[0] == 3
    assert read_jsonl(tmp_path / "t0" / "metrics.jsonl")[-1]["kind"] == "diverged"
    assert together[1]["status"] == "done"
    assert_close_records(tmp_path / "alone1", tmp_path / "t1")


def test_sigterm_stops_every_model_and_the_rerun_ends_bitwise_as_uninterrupted(
        runs, tmp_path, capsys):
    workdirs = [tmp_path / f"m{i}" for i in range(3)]
    stopped = train_vmapped(runs["configs"], workdirs, dataset=runs["dataset"],
                            hooks=[kill_after(12, "SIGTERM")])
    assert [r["status"] for r in stopped] == ["interrupted"] * 3
    assert all(checkpoint(w)[0] == 12 for w in workdirs)
    resumed = train_vmapped(runs["configs"], workdirs, dataset=runs["dataset"])
    assert "resuming from step 12" in capsys.readouterr().out
    for workdir, result, reference, expected in zip(
            workdirs, resumed, runs["together"], runs["together_results"], strict=True):
        assert without_timing(result) == without_timing(expected)
        assert_trees_equal(checkpoint(workdir)[1], checkpoint(reference)[1])
        assert read_records(workdir) == read_records(reference)


def test_resume_from_the_newest_common_checkpoint_or_refuse(runs, tmp_path, capsys):
    """A kill between the models' saves leaves them at different steps: the group goes back to
    the newest step they all hold; without one it refuses and the sweep runs them one by one."""
    workdirs = [tmp_path / f"m{i}" for i in range(3)]
    for source, target in zip(runs["together"], workdirs, strict=True):
        shutil.copytree(source, target)
        (target / "results.json").unlink()
        write_status(target, "interrupted")
    shutil.rmtree(workdirs[0] / "checkpoints" / "80")  # model 0 at step 40, the others at 80
    resumed = train_vmapped(runs["configs"], workdirs, dataset=runs["dataset"])
    assert "resuming from step 40" in capsys.readouterr().out
    for result, expected in zip(resumed, runs["together_results"], strict=True):
        assert without_timing(result) == without_timing(expected)
    for target in workdirs:
        (target / "results.json").unlink()
        write_status(target, "interrupted")
    shutil.rmtree(workdirs[0] / "checkpoints" / "80")
    shutil.rmtree(workdirs[1] / "checkpoints" / "40")  # 40 and 80: no step in common
    with pytest.raises(GroupError, match="one by one"):
        train_vmapped(runs["configs"], workdirs, dataset=runs["dataset"])


def test_run_group_falls_back_to_one_by_one_when_it_cannot_group(train_env, tmp_path):
    configs = [tiny_config(num_epochs=1), tiny_config(num_epochs=1, batch_size=20)]
    directories = [tmp_path / "a", tmp_path / "b"]
    outcomes = run_group(directories, configs)
    assert [o["status"] for o in outcomes] == ["done", "done"]
    runs_a = read_json(directories[0] / "trial.json")["runs"]
    assert [r["status"] for r in runs_a] == ["regrouped", "done"]
    assert "batch_size" in runs_a[0]["reason"]


def test_pick_executor():
    assert pick_executor("auto", backend="cpu") == "local"
    assert pick_executor("auto", backend="gpu") == "vmap"
    assert pick_executor("ray", backend="gpu") == "ray"
    with pytest.raises(ValueError, match="executor"):
        pick_executor("threads")


def plan_for(trial_id: str, **values) -> TrialPlan:
    config = tiny_config(**values)
    return TrialPlan(Trial(trial_id, "g", values, 0, config), (28, 28, 1), [], None)


def test_vmap_groups_keep_grid_order_and_split_at_max_models():
    plans = [plan_for("a", learning_rate=0.1), plan_for("b", batch_size=20),
             plan_for("c", learning_rate=0.2), plan_for("d", learning_rate=0.3)]
    ids = [[p.trial.id for p in group] for group in vmap_groups(plans, max_models=2)]
    assert ids == [["a", "c"], ["b"], ["d"]]
    assert [[p.trial.id for p in g] for g in vmap_groups(plans, 64)] == [["a", "c", "d"], ["b"]]


def test_a_vmap_sweep_trains_each_architecture_as_one_program(train_env, tmp_path):
    base = tiny_sweep().base
    base.model.layers[0]["features"] = 2
    config = sweep_of([{"product": {"model.layers[0].kernel": [3, 5],
                                    "learning_rate": [0.05, 0.1]}}], base=base)
    outcome = run_sweep(config, tmp_path, executor="vmap", report=False, echo=False,
                        compilation_cache=train_env["CNN_JAX_COMPILATION_CACHE"])
    assert outcome.counts() == {"done": 4}
    assert "4 trials in 2 programs: 4 of them in 2 vmapped groups" in \
        (tmp_path / "sweep.log").read_text()
    rows = read_csv(tmp_path / "results.csv")
    groups = {}
    for row in rows:
        run = read_json(tmp_path / "trials" / row["trial"] / "trial.json")["runs"][-1]
        assert run["executor"] == "vmap"
        groups.setdefault(json.dumps(run["group"]), []).append(row["trial"])
        assert row["vmapped_models"] == "2"
        assert float(row["model_images_per_second"]) > float(row["images_per_second"])
    assert sorted(len(g) for g in groups.values()) == [2, 2]
    assert all(len({t.split("-")[0] for t in g}) == 1 for g in groups.values())  # one kernel
