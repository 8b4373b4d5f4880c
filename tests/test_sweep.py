"""Sweeps: grid expansion, size relations before training, invalid trials, result files, resume,
and shared compiled programs.

The end-to-end sweep is configs/sweeps/tiny.py on the synthetic data set: conv1 (4 maps,
k ∈ {5, 9}, stride ∈ {1, 3}) → pool1 (max 2×2 or none) → conv2 (4 maps 4×4) → 10 logits; k9-s3-pmax
is impossible (conv2's 4×4 kernel on a 3×3 map).
"""

from __future__ import annotations

import copy
import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ml_collections
import pytest
from conftest import REPO, script_env

from cnn_jax.config import base_config
from cnn_jax.presets import preset
from cnn_jax.sweep import (
    SweepError,
    canonical_key,
    load_sweep,
    parse_key,
    run_sweep,
    set_value,
)
from cnn_jax.sweep import worker as sweep_worker
from cnn_jax.sweep.plan import plan_all
from cnn_jax.train.logs import read_json

SWEEPS = REPO / "configs" / "sweeps"


def load_config_file(path: Path) -> ml_collections.ConfigDict:
    spec = importlib.util.spec_from_file_location(f"sweep_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def tiny_sweep() -> ml_collections.ConfigDict:
    config = load_config_file(SWEEPS / "tiny.py")
    config.base.dataset = "synthetic"
    config.base.progress = False
    return config


def sweep_of(axes, seeds=(0,), base=None) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(
        {"base": base or tiny_sweep().base, "axes": axes, "seeds": list(seeds)})



def test_dotted_keys_with_indices_in_both_spellings():
    assert parse_key("model.layers[0].kernel") == ("model", "layers", 0, "kernel")
    assert parse_key("model.layers.0.kernel") == ("model", "layers", 0, "kernel")
    assert parse_key("a.b[2][3]") == ("a", "b", 2, 3)
    assert canonical_key("model.layers.2.window") == "model.layers[2].window"
    for bad in ("", "a..b", "[0].x", "a.b[x]", "a-b"):
        with pytest.raises(SweepError):
            parse_key(bad)


def test_a_key_into_a_preset_copies_its_layers_first():
    config = base_config()
    config.model.preset = "nielsen_cp2_fc100_relu"
    set_value(config, "model.layers.2.kernel", 3)
    expected = preset("nielsen_cp2_fc100_relu")
    expected[2]["kernel"] = 3
    assert config.model.layers == expected
    set_value(config, "learning_rate", 0.5)
    assert config.learning_rate == 0.5
    for key in ("model.layers[9].kernel", "model.nope", "learning_rate.x"):
        with pytest.raises(SweepError):
            set_value(config, key, 1)


def test_product_with_seeds_outermost_and_the_first_key_slowest():
    axes = [{"product": {"model.layers.0.kernel": [3, 5],
                         "model.layers[1].pool_type": ["max", "avg"]}}]
    sweep = load_sweep(sweep_of(axes, seeds=[0, 1]))
    ids = [t.id for t in sweep.trials()]
    assert ids == ["k3-pmax-seed0", "k3-pavg-seed0", "k5-pmax-seed0", "k5-pavg-seed0",
                   "k3-pmax-seed1", "k3-pavg-seed1", "k5-pmax-seed1", "k5-pavg-seed1"]
    trial = sweep.trials()[6]
    assert trial.group == "k5-pmax" and trial.seed == 1 and trial.config.seed == 1
    assert trial.config.model.layers[0]["kernel"] == 5
    assert trial.values == {"model.layers[0].kernel": 5, "model.layers[1].pool_type": "max"}
    assert [d.name for d in sweep.dimensions] == ["k", "p"]


def test_zip_changes_its_keys_together_and_combines_with_a_product():
    config = sweep_of([{"zip": {"model.layers[0].kernel": [3, 5, 7],
                                "model.layers[0].stride": [1, 1, 2]}},
                       {"product": {"learning_rate": [0.1, 0.01]}}])
    trials = load_sweep(config).trials()
    assert len(trials) == 6
    pairs = {(t.config.model.layers[0]["kernel"], t.config.model.layers[0]["stride"])
             for t in trials}
    assert pairs == {(3, 1), (5, 1), (7, 2)}
    assert trials[0].id == "k3-s1-lr0.1-seed0"
    dims = load_sweep(config).dimensions
    assert [d.name for d in dims] == ["k+s", "lr"] and dims[0].point_label((7, 2)) == "k7,s2"


def test_ids_depend_on_values_so_an_extended_grid_keeps_the_old_trials():
    one = load_sweep(sweep_of([{"product": {"learning_rate": [0.1, 0.3], "l2": [0.0, 1.0]}}]))
    two = load_sweep(sweep_of([{"product": {"learning_rate": [1.0, 0.3, 0.1], "l2": [1.0, 0.0]}}],
                              seeds=[0, 1]))
    one, two = one.trials(), two.trials()
    ids_one = {t.id: t.values for t in one}
    ids_two = {t.id: t.values for t in two}
    assert "lr0.1-lam0-seed0" in ids_one
    assert len(ids_two) == 12 and all(ids_two[i] == values for i, values in ids_one.items())


def test_clashing_labels_get_the_layer_index_and_trials_do_not_share_configs():
    sweep = load_sweep(sweep_of([{"product": {"model.layers[0].features": [2, 3],
                                              "model.layers[2].features": [4]}}]))
    trials = sweep.trials()
    assert trials[0].id == "f0_2-f2_4-seed0"
    trials[0].config.model.layers[0]["features"] = 99
    assert trials[1].config.model.layers[0]["features"] == 3
    assert sweep.base.model.layers[0]["features"] == 4


@pytest.mark.parametrize("axes, message", [
    ([{"product": {"seed": [1, 2]}}], "config.seeds"),
    ([{"zip": {"learning_rate": [0.1, 0.2], "l2": [0.0]}}], "differ in length"),
    ([{"product": {"learning_rate": []}}], "non-empty"),
    ([{"grid": {"learning_rate": [0.1]}}], "product"),
    ([{"product": {"learning_rate": [0.1]}}, {"zip": {"learning_rate": [0.2]}}], "twice"),
    ([{"product": {"model.layers[0].colour": [1]}}], "no field 'colour'"),
    ([{"product": {"model.optimiser": ["sgd"]}}], "no such config key"),
])
def test_bad_sweep_configs_are_refused(axes, message):
    with pytest.raises(SweepError, match=message):
        load_sweep(sweep_of(axes))


@pytest.mark.parametrize("name, trials, invalid", [
    ("tiny", 8, 1), ("filter_size", 12, 0), ("stride", 9, 3), ("feature_maps", 15, 0),
    ("pooling", 12, 0), ("full_product", 360, 140), ("lr_seed", 20, 0),
])
def test_preset_sweeps_expand_and_plan(name, trials, invalid):
    sweep = load_sweep(load_config_file(SWEEPS / f"{name}.py"))
    plans = plan_all(sweep.trials())
    assert len(plans) == trials
    assert sum(not p.valid for p in plans) == invalid
    assert len({p.trial.id for p in plans}) == trials



def by_hand(kernel: int, stride: int, pool: str) -> dict[str, str]:
    """out = floor((in − k)/s) + 1 per layer (VALID padding), written out for the tiny net."""
    conv1 = (28 - kernel) // stride + 1
    pool1 = (conv1 - 2) // 2 + 1 if pool == "max" else conv1
    conv2 = pool1 - 4 + 1
    return {"conv1_out": f"{conv1}x{conv1}x4", "pool1_out": f"{pool1}x{pool1}x4",
            "conv2_out": f"{conv2}x{conv2}x4", "dense1_out": "10",
            "params": str((kernel * kernel + 1) * 4 + (16 * 4 + 1) * 4
                          + (conv2 * conv2 * 4 + 1) * 10)}


@pytest.fixture(scope="module")
def tiny_run(train_env, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sweep") / "tiny"
    outcome = run_sweep(tiny_sweep(), workdir, compilation_cache=train_env[
        "CNN_JAX_COMPILATION_CACHE"], echo=False)
    return workdir, outcome


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


def test_tiny_sweep_runs_to_the_end_with_one_invalid_trial(tiny_run):
    workdir, outcome = tiny_run
    assert outcome.counts() == {"done": 7, "invalid": 1} and not outcome.interrupted
    status = read_json(workdir / "trials" / "k9-s3-pmax-seed0" / "status.json")
    assert status["status"] == "invalid"
    assert "conv2" in status["reason"] and "= 0" in status["reason"]
    assert not (workdir / "trials" / "k9-s3-pmax-seed0" / "metrics.jsonl").exists()
    for trial in outcome.statuses:
        folder = workdir / "trials" / trial
        assert {"config.json", "status.json", "trial.json"} <= {p.name for p in folder.iterdir()}
        if outcome.statuses[trial] == "done":
            assert (folder / "metrics.jsonl").exists() and (folder / "checkpoints").is_dir()


def test_results_csv_has_the_sizes_of_the_formula_and_the_invalid_reason(tiny_run):
    workdir, _ = tiny_run
    rows = read_csv(workdir / "results.csv")
    assert [r["trial"] for r in rows] == [
        f"k{k}-s{s}-p{p}-seed0" for k in (5, 9) for s in (1, 3) for p in ("max", "none")]
    for row in rows:
        kernel, stride = int(row["model.layers[0].kernel"]), int(row["model.layers[0].stride"])
        pool = row["model.layers[1].pool_type"]
        if row["status"] == "invalid":
            assert (kernel, stride, pool) == (9, 3, "max")
            assert "conv2" in row["reason"] and row["test_accuracy"] == ""
            continue
        assert row["status"] == "done"
        expected = by_hand(kernel, stride, pool)
        assert {key: row[key] for key in expected} == expected
        assert 0.0 <= float(row["test_accuracy"]) <= 1.0
        assert float(row["train_time_s"]) > 0 and float(row["images_per_second"]) > 0
        for column in ("macs", "receptive_field", "compile_time_s", "best_val_accuracy"):
            assert row[column] != ""
    jsonl = [json.loads(line) for line in (workdir / "results.jsonl").read_text().splitlines()]
    assert [r["trial"] for r in jsonl] == [r["trial"] for r in rows]
    assert all(str(j["test_accuracy"] if j["test_accuracy"] is not None else "") == r[
        "test_accuracy"] for j, r in zip(jsonl, rows, strict=True))
    # receptive field of conv2 for k5 s1 max: 5 → 6 (pool, jump 2) → 6 + 3·2 = 12
    assert jsonl[0]["receptive_field"] == "12"


def test_size_tables_are_logged_before_training(tiny_run):
    workdir, _ = tiny_run
    shapes = (workdir / "shapes.md").read_text()
    assert shapes.count("### ") == 8 and "**invalid**" in shapes
    assert "floor((28 + 2·0 − 1·(9−1) − 1)/3) + 1 = 7" in shapes
    log = (workdir / "sweep.log").read_text()
    assert log.index("k9-s3-pmax: INVALID") < log.index("k5-s1-pmax-seed0: done")
    assert log.index("conv2   4 maps 4×4") < log.index("k5-s1-pmax-seed0: done")


def test_report_has_tables_plots_and_architectures(tiny_run):
    workdir, _ = tiny_run
    report = (workdir / "report.md").read_text()
    assert "## Configurations, best first" in report and "## Impossible configurations" in report
    invalid = report.split("## Impossible configurations")[1].split("##")[0]
    assert "k9-s3-pmax" in invalid and "conv2" in invalid
    ranked = report.split("## Configurations, best first")[1].split("##")[0]
    accuracies = [float(line.split("|")[10].split("±")[0]) for line in ranked.splitlines()
                  if line.startswith("| ") and line[2].isdigit()]
    assert len(accuracies) == 7 and accuracies == sorted(accuracies, reverse=True)
    assert report.count("### Architecture ") == 7
    pngs = sorted(p.name for p in (workdir / "plots").glob("*.png"))
    assert {"accuracy_vs_k.png", "accuracy_vs_s.png", "accuracy_vs_p.png", "heatmap_k_s.png",
            "accuracy_vs_params.png", "accuracy_vs_macs.png"} <= set(pngs)
    for name in pngs:
        assert f"(plots/{name})" in report
        assert (workdir / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = read_csv(workdir / "summary.csv")
    assert len(summary) == 8 and summary[0]["test_accuracy_mean"] != ""
    runs = sorted(p.name for p in (workdir / "tensorboard").iterdir())
    assert len(runs) == 7 and "k9-s3-pmax-seed0" not in runs
    assert all(list((workdir / "tensorboard" / run).glob("events.out.tfevents.*")) for run in runs)



def sweep_script(workdir: Path, **env: str) -> subprocess.Popen:
    """`python -m experiments.sweep` on configs/sweeps/tiny.py with the synthetic data set
    (output in workdir.parent/script.log)."""
    log = (workdir.parent / "script.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.sweep", f"--config={SWEEPS / 'tiny.py'}",
         "--config.base.dataset=synthetic", "--config.base.progress=false",
         f"--workdir={workdir}", "--noreport"], cwd=REPO, env=script_env(**env), stdout=log,
        stderr=subprocess.STDOUT)


def attempts_and_mtimes(workdir: Path) -> dict[str, tuple[int, float]]:
    out = {}
    for folder in sorted((workdir / "trials").iterdir()):
        info = read_json(folder / "trial.json", {})
        results = folder / "results.json"
        out[folder.name] = (len(info.get("runs", [])),
                            results.stat().st_mtime_ns if results.exists() else None)
    return out


def test_max_trials_then_rerun_runs_only_the_rest(train_env, tmp_path):
    cache = train_env["CNN_JAX_COMPILATION_CACHE"]
    first = run_sweep(tiny_sweep(), tmp_path, max_trials=3, compilation_cache=cache, echo=False)
    assert first.counts() == {"done": 3, "invalid": 1, "pending": 4} and len(first.ran) == 3
    rows = read_csv(tmp_path / "results.csv")
    assert [r["status"] for r in rows].count("pending") == 4
    assert "3 done" in (tmp_path / "report.md").read_text()
    before = attempts_and_mtimes(tmp_path)
    second = run_sweep(tiny_sweep(), tmp_path, compilation_cache=cache, echo=False)
    assert second.counts() == {"done": 7, "invalid": 1}
    assert sorted(second.ran) == sorted(t for t, s in first.statuses.items() if s == "pending")
    after = attempts_and_mtimes(tmp_path)
    for trial in first.ran:
        assert after[trial] == before[trial] == (1, before[trial][1])
    assert all(after[t][0] == 1 for t in second.ran)
    changed = tiny_sweep()
    changed.base.learning_rate = 0.2  # same trial ids, other configs: refused, nothing touched
    manifest = (tmp_path / "sweep.json").read_text()
    with pytest.raises(SweepError, match="another sweep config"):
        run_sweep(changed, tmp_path, echo=False)
    assert (tmp_path / "sweep.json").read_text() == manifest


def test_a_killed_sweep_resumes_without_rerunning_finished_trials(train_env, tmp_path):
    """SIGKILL the sweep script once two trials are done; the rerun finishes the rest."""
    workdir = tmp_path / "sweep"
    process = sweep_script(workdir)
    deadline = time.time() + 150
    try:
        while time.time() < deadline and process.poll() is None:
            done = [p for p in workdir.glob("trials/*/status.json")
                    if (read_json(p) or {}).get("status") == "done"]
            if len(done) >= 2:
                os.kill(process.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.wait() == -signal.SIGKILL
    rows = read_csv(workdir / "results.csv")  # atomically written: never torn
    assert len(rows) == 8
    before = attempts_and_mtimes(workdir)
    finished = [t for t, (n, mtime) in before.items() if mtime is not None]
    assert len(finished) >= 2
    outcome = run_sweep(tiny_sweep(), workdir, echo=False,
                        compilation_cache=train_env["CNN_JAX_COMPILATION_CACHE"])
    assert outcome.counts() == {"done": 7, "invalid": 1}
    after = attempts_and_mtimes(workdir)
    assert all(after[t] == before[t] for t in finished)
    assert not set(finished) & set(outcome.ran)
    for trial in outcome.ran:  # the one killed while running counts a second attempt
        assert after[trial][0] == before[trial][0] + 1



def test_trials_that_differ_in_values_share_one_compiled_program(train_env, tmp_path):
    base = copy.deepcopy(tiny_sweep().base)
    base.model.layers[0]["features"] = 3  # an architecture no other test compiles
    config = sweep_of([{"product": {"learning_rate": [0.05, 0.1], "l2": [0.0, 0.5]}}],
                      seeds=[0, 1], base=base)
    loads_before = sum(sweep_worker.LOADS.values())
    outcome = run_sweep(config, tmp_path, report=False, echo=False,
                        compilation_cache=train_env["CNN_JAX_COMPILATION_CACHE"])
    assert outcome.counts() == {"done": 8}
    assert sum(sweep_worker.LOADS.values()) - loads_before <= 2  # once per seed (data key)
    rows = read_csv(tmp_path / "results.csv")
    first, rest = rows[0], rows[1:]
    assert all(r["compiles"] == "0" for r in rest), [r["compiles"] for r in rest]
    assert all(float(r["compile_time_s"]) < 0.05 for r in rest)
    runs = [read_json(tmp_path / "trials" / r["trial"] / "trial.json")["runs"][-1] for r in rest]
    # At most one small program comes from the disk cache: train/loop.py jits a fresh lambda (the
    # NaN check) in every run, which only the persistent cache can recognise.
    assert all(run["cache_loads"] <= 1 for run in runs), [run["cache_loads"] for run in runs]
    assert float(first["compile_time_s"]) >= max(float(r["compile_time_s"]) for r in rest)
    assert len({r["test_accuracy"] for r in rows}) > 1  # the values did change the training


def test_sigterm_stops_the_sweep_and_the_rerun_resumes_the_trial_exactly(tiny_run, tmp_path):
    """SIGTERM at step 12 of the first trial (the core's fault hook): the trial saves a checkpoint
    and ends interrupted, the sweep exits 130; the rerun resumes it to the accuracy of an
    uninterrupted run."""
    workdir = tmp_path / "sweep"
    process = sweep_script(workdir, CNN_JAX_FAULT_AFTER_STEPS="12", CNN_JAX_FAULT_SIGNAL="SIGTERM")
    assert process.wait(timeout=150) == 130, (tmp_path / "script.log").read_text()[-2000:]
    first = workdir / "trials" / "k5-s1-pmax-seed0"
    assert read_json(first / "status.json")["status"] == "interrupted"
    assert read_json(workdir / "trials" / "k5-s1-pnone-seed0" / "status.json")["status"] == \
        "pending"
    outcome = run_sweep(tiny_sweep(), workdir, max_trials=1, echo=False, report=False)
    assert outcome.ran == ["k5-s1-pmax-seed0"] and outcome.statuses[outcome.ran[0]] == "done"
    assert len(read_json(first / "trial.json")["runs"]) == 2
    uninterrupted = read_json(tiny_run[0] / "trials" / "k5-s1-pmax-seed0" / "results.json")
    resumed = read_json(first / "results.json")
    for key in ("test_accuracy_at_best_val", "best_val_accuracy", "final_train_loss"):
        assert resumed[key] == uninterrupted[key], key
