"""The explorer's data and page without a browser: seeds pooled with the t interval, impossible
configurations with their reason, a self-contained page, the script's errors, and the budget of
a 200-trial sweep (tests/test_explorer_browser.py drives the page in Chromium)."""

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from cnn_jax.explorer import config_data, render_page, sweep_data, write_page
from cnn_jax.explorer.views import dequantize, quantize
from cnn_jax.sweep.grid import distinct, load_sweep
from cnn_jax.sweep.plan import plan_trial
from cnn_jax.train.logs import write_status
from tests.conftest import REPO, run_script

TINY_SWEEP = REPO / "configs" / "sweeps" / "tiny.py"


def tiny_sweep_config(axes, seeds):
    """configs/sweeps/tiny.py with other axes and seeds (synthetic data: nothing to prepare)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_sweep", TINY_SWEEP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.base.dataset = "synthetic"
    config.axes = axes
    config.seeds = tuple(seeds)
    return config


def accuracy_of(values, seed):
    """A made-up test accuracy of a trial, different for every configuration and seed."""
    kernel = values.get("model.layers[0].kernel", 5)
    maps = values.get("model.layers[0].features", 4)
    return round(0.5 + 0.01 * kernel + 0.004 * maps + 0.01 * seed, 6)


def write_sweep_folder(workdir: Path, axes, seeds, accuracy=accuracy_of) -> dict:
    """A finished sweep's files as `cnn_jax.sweep.run` writes them (sweep.json; per trial
    status.json, trial.json, results.json, metrics.jsonl), without training: a fixture for the
    page. Impossible configurations are `invalid` with the planner's reason."""
    config = tiny_sweep_config(axes, seeds)
    sweep = load_sweep(config)
    trials, duplicates = distinct(sweep.trials())
    workdir.mkdir(parents=True, exist_ok=True)
    manifest = {"name": "fixture", "dimensions": [d.as_dict() for d in sweep.dimensions],
                "seeds": list(seeds), "trials": [t.record() for t in trials],
                "input_shape": [28, 28, 1], "duplicates": duplicates,
                "sweep_config": json.loads(json.dumps(config.to_dict(), default=str))}
    (workdir / "sweep.json").write_text(json.dumps(manifest))
    for trial in trials:
        directory = workdir / "trials" / trial.id
        directory.mkdir(parents=True)
        plan = plan_trial(trial, (28, 28, 1))
        (directory / "trial.json").write_text(json.dumps({**trial.record(),
                                                          **plan.architecture()}))
        if not plan.valid:
            write_status(directory, "invalid", reason=plan.reason)
            continue
        acc = accuracy(trial.values, trial.seed)
        architecture = plan.architecture()
        (directory / "results.json").write_text(json.dumps({
            "test_accuracy_at_best_val": acc, "best_epoch": 2, "images_per_second": 1000.0,
            "params": architecture["params"], "macs": architecture["macs"]}))
        (directory / "metrics.jsonl").write_text("".join(json.dumps(
            {"kind": "epoch", "epoch": e, "train_loss": 1.0 / e, "val_accuracy": acc - 0.01 / e,
             "test_accuracy": acc - 0.01 * (2 - e)}) + "\n" for e in (1, 2)))
        write_status(directory, "done")
    return manifest


KS_AXES = [{"product": {"model.layers[0].kernel": [5, 9], "model.layers[0].stride": [1, 3]}}]


@pytest.fixture(scope="module")
def fixture_sweep(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("explorer") / "sweep"
    write_sweep_folder(workdir, KS_AXES, seeds=(0, 1, 2))
    return workdir


def test_seeds_are_pooled_with_the_t_interval(fixture_sweep):
    data = sweep_data(fixture_sweep, views=False)
    entry = next(c for c in data["configs"] if c["id"] == "k5-s1")
    # seeds 0, 1, 2: 0.566, 0.576, 0.586: mean 0.576, s = 0.01, t(0.975, 2) = 4.302653 (tables)
    half = 4.302653 * 0.01 / np.sqrt(3)
    assert entry["accuracy"]["n"] == 3
    assert entry["accuracy"]["mean"] == pytest.approx(0.576)
    assert entry["accuracy"]["low"] == pytest.approx(0.576 - half, abs=1e-6)
    assert entry["accuracy"]["high"] == pytest.approx(0.576 + half, abs=1e-6)
    assert entry["point"] == [0, 0] and [a["values"] for a in data["axes"]] == [["5", "9"],
                                                                                ["1", "3"]]
    assert entry["layers"][0] == {"type": "conv", "features": 4, "kernel": 5, "stride": 1,
                                  "padding": "VALID", "dilation": 1, "activation": "relu"}
    assert [len(t["curve"]) for t in entry["trials"]] == [2, 2, 2]


def test_an_impossible_configuration_keeps_the_formula_that_refuses_it(fixture_sweep):
    data = sweep_data(fixture_sweep, views=False)
    entry = next(c for c in data["configs"] if c["id"] == "k9-s3")
    # conv1 floor((28 − 9)/3) + 1 = 7, pool1 3, conv2's 4×4 kernel does not fit
    assert entry["status"] == "3 invalid" and entry["accuracy"]["n"] == 0
    assert "conv2" in entry["reason"]
    assert "floor((3 + 2·0 − 1·(4−1) − 1)/1) + 1 = 0" in entry["reason"]


def test_grid_points_trained_once_show_the_trial_that_trains_them(tmp_path):
    axes = [{"product": {"model.layers[1].pool_type": ["max", "none"],
                         "model.layers[1].window": [2, 3]}}]
    manifest = write_sweep_folder(tmp_path / "sweep", axes, seeds=(0,))
    assert manifest["duplicates"] == {"pnone-w3-seed0": "pnone-w2-seed0"}
    configs = {c["id"]: c for c in sweep_data(tmp_path / "sweep", views=False)["configs"]}
    assert sorted(configs) == ["pmax-w2", "pmax-w3", "pnone-w2", "pnone-w3"]
    assert configs["pnone-w3"]["same_as"] == "pnone-w2" and configs["pnone-w3"]["point"] == [1, 1]
    assert configs["pnone-w3"]["accuracy"] == configs["pnone-w2"]["accuracy"]


def test_quantize_round_trip_and_symmetric_kernel_scale():
    values = np.linspace(-0.3, 0.7, 24).reshape(2, 3, 4)
    record = quantize(values)
    np.testing.assert_allclose(dequantize(record), values, atol=1.0 / 255)
    kernel = quantize(values, symmetric=True)
    assert (kernel["low"], kernel["high"]) == (-0.7, 0.7)
    np.testing.assert_allclose(dequantize(kernel), values, atol=1.4 / 255)


def test_page_is_one_self_contained_file(fixture_sweep, tmp_path):
    data = sweep_data(fixture_sweep, views=False)
    data["title"] = "a </script><!-- title"
    html = render_page(data)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "@import" not in html and "fetch(" not in html
    payload = re.search(r'<script type="application/json" id="explorer-data">(.*?)</script>',
                        html, re.S).group(1)
    assert json.loads(payload)["title"] == "a </script><!-- title"
    path = write_page(data, tmp_path / "page")
    assert path == tmp_path / "page" / "index.html" and path.read_text() == html


def test_config_data_is_geometry_only():
    from tests.conftest import tiny_config

    data = config_data(tiny_config())
    assert data["mode"] == "config" and data["input_shape"] == [28, 28, 1]
    assert [layer["type"] for layer in data["configs"][0]["layers"]] == [
        "conv", "pool", "dropout", "dense"]
    assert data["configs"][0]["accuracy"]["n"] == 0 and data["digit"]["pixels"]["shape"] == [
        28, 28]


@pytest.mark.parametrize("args, message", [
    ((), "give exactly one of --workdir=SWEEP, --run=RUN or --config=FILE"),
    (("--workdir=WORK", "--run=WORK"), "(got --workdir, --run)"),
    (("--workdir=WORK",), "not a sweep folder (no sweep.json)"),
    (("--run=WORK",), "is not a run folder (no config.json)"),
    (("--workdir=WORK/missing",), "not a sweep folder"),
])
def test_script_refuses_bad_sources_in_one_line(tmp_path, train_env, args, message):
    result = run_script(*(a.replace("WORK", str(tmp_path)) for a in args),
                        module="experiments.explore", timeout=120)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "explorer").exists()


def test_script_builds_a_200_trial_sweep_within_budget(tmp_path, train_env):
    """Budget: a 200-trial sweep's page is built in < 30 s and weighs < 20 MB (its opening
    time is measured in the browser test)."""
    axes = [{"product": {"model.layers[0].kernel": list(range(1, 11)),
                         "model.layers[0].features": list(range(1, 11))}}]
    workdir = tmp_path / "sweep200"
    write_sweep_folder(workdir, axes, seeds=(0, 1))
    start = time.perf_counter()
    result = run_script(f"--workdir={workdir}", module="experiments.explore", timeout=120)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    page = workdir / "explorer" / "index.html"
    assert f"{page}: 100 configurations" in result.stdout
    assert elapsed < 30 and page.stat().st_size < 20e6


def test_script_config_mode_writes_a_geometry_page(tmp_path, train_env):
    from tests.conftest import TINY

    result = run_script(f"--config={TINY}", "--config.model.layers[0].kernel=3",
                        f"--out={tmp_path}", module="experiments.explore", timeout=120)
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "index.html").read_text()
    payload = re.search(r'id="explorer-data">(.*?)</script>', html, re.S).group(1)
    data = json.loads(payload)
    assert data["mode"] == "config" and data["configs"][0]["layers"][0]["kernel"] == 3
