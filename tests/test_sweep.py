"""Sweeps end to end: size relations before training, invalid trials, result files, reports,
resume and shared compiled programs (grids and plans: test_sweep_grid.py).

The end-to-end sweep is configs/sweeps/tiny.py on the synthetic data set: conv1 (4 maps,
k ∈ {5, 9}, stride ∈ {1, 3}) → pool1 (max 2×2 or none) → conv2 (4 maps 4×4) → 10 logits; k9-s3-pmax
is impossible (conv2's 4×4 kernel on a 3×3 map).
"""

from __future__ import annotations

import collections
import copy
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO, SWEEPS, read_csv, script_command, script_env, sweep_of, tiny_sweep

from cnn_jax.sweep import SweepError, run_sweep
from cnn_jax.sweep import worker as sweep_worker
from cnn_jax.train.logs import read_json


def by_hand(kernel: int, stride: int, pool: str) -> dict[str, str]:
    """out = floor((in − k)/s) + 1 per layer (VALID padding), written out for the tiny net."""
    conv1 = (28 - kernel) // stride + 1
    pool1 = (conv1 - 2) // 2 + 1 if pool == "max" else conv1
    conv2 = pool1 - 4 + 1
    return {"conv1_out": f"{conv1}x{conv1}x4", "pool1_out": f"{pool1}x{pool1}x4",
            "conv2_out": f"{conv2}x{conv2}x4", "dense1_out": "10",
            "params": str((kernel * kernel + 1) * 4 + (16 * 4 + 1) * 4
                          + (conv2 * conv2 * 4 + 1) * 10)}


def test_tiny_sweep_runs_to_the_end_with_one_invalid_trial(tiny_run):
    workdir, statuses = tiny_run  # the session's run (conftest.tiny_run), ended uninterrupted
    assert collections.Counter(statuses.values()) == {"done": 7, "invalid": 1}
    status = read_json(workdir / "trials" / "k9-s3-pmax-seed0" / "status.json")
    assert status["status"] == "invalid"
    assert "conv2" in status["reason"] and "= 0" in status["reason"]
    assert not (workdir / "trials" / "k9-s3-pmax-seed0" / "metrics.jsonl").exists()
    for trial, status in statuses.items():
        folder = workdir / "trials" / trial
        assert {"config.json", "status.json", "trial.json"} <= {p.name for p in folder.iterdir()}
        if status == "done":
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
    # ranked by validation accuracy (column 10), never by test accuracy (column 12)
    accuracies = [float(line.split("|")[10].split("±")[0]) for line in ranked.splitlines()
                  if line.startswith("| ") and line[2].isdigit()]
    assert "val acc. (%)" == ranked.split("|")[10].strip()
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



def sweep_script(workdir: Path, fault_after: int | None = None, fault_signal: str = "SIGKILL",
                 **env: str) -> subprocess.Popen:
    """`python -m experiments.sweep` on configs/sweeps/tiny.py with the synthetic data set
    (output in workdir.parent/script.log); fault_after: see `conftest.kill_after`."""
    log = (workdir.parent / "script.log").open("w")
    args = (f"--config={SWEEPS / 'tiny.py'}", "--config.base.dataset=synthetic",
            "--config.base.progress=false", f"--workdir={workdir}", "--noreport")
    return subprocess.Popen(
        script_command("experiments.sweep", args, fault_after, fault_signal), cwd=REPO,
        env=script_env(**env), stdout=log, stderr=subprocess.STDOUT)


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
    """SIGKILL the sweep script once two trials are done; the rerun starts at the trial that was
    killed while running (a second attempt) and never touches a finished one. It runs two
    trials: the rest are the same path (a whole sweep to the end: `tiny_run`)."""
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
    killed = [t for t, (attempts, mtime) in before.items() if attempts and mtime is None]
    outcome = run_sweep(tiny_sweep(), workdir, max_trials=2, echo=False,
                        compilation_cache=train_env["CNN_JAX_COMPILATION_CACHE"])
    after = attempts_and_mtimes(workdir)
    assert all(after[t] == before[t] for t in finished)
    assert len(outcome.ran) == 2 and not set(finished) & set(outcome.ran)
    assert set(killed) <= set(outcome.ran), (killed, outcome.ran)
    for trial in outcome.ran:  # the one killed while running counts a second attempt
        assert after[trial][0] == before[trial][0] + 1 and outcome.statuses[trial] == "done"



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
    # At most one small program comes from the disk cache: a small program jitted afresh in every
    # run (e.g. the NaN check) is recognised only by the persistent cache.
    assert all(run["cache_loads"] <= 1 for run in runs), [run["cache_loads"] for run in runs]
    assert float(first["compile_time_s"]) >= max(float(r["compile_time_s"]) for r in rest)
    assert len({r["test_accuracy"] for r in rows}) > 1  # the values did change the training


def test_sigterm_stops_the_sweep_and_the_rerun_resumes_the_trial_exactly(tiny_run, tmp_path):
    """SIGTERM at step 12 of the first trial (the core's fault hook): the trial saves a checkpoint
    and ends interrupted, the sweep exits 130; the rerun resumes it to the accuracy of an
    uninterrupted run."""
    workdir = tmp_path / "sweep"
    process = sweep_script(workdir, fault_after=12, fault_signal="SIGTERM")
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
