"""Training end to end: the script on the embedded MNIST subset, the files of a run, Nielsen's
protocol in results.json, 1 vs 4 devices, resuming after a clean stop, a missing data set."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import (
    assert_trees_equal,
    checkpoint,
    kill_after,
    leaves,
    read_records,
    read_tensorboard_scalars,
    run_script,
    tiny_args,
    tiny_config,
    without_timing,
)

from cnn_jax.config import build_network, config_to_json, with_defaults
from cnn_jax.summary import shape_table
from cnn_jax.train import train_and_evaluate
from cnn_jax.train.results import summarize

pytestmark = pytest.mark.usefixtures("train_env")

# 1,000 training, 200 validation, 300 test images of the embedded MNIST; batches of 8 so that
# they split evenly over 4 devices; 2 epochs of 125 steps.
MNIST_FLAGS = (
    "--config.dataset=mnist_5k", "--config.train_size=1000", "--config.validation_size=200",
    "--config.test_size=300", "--config.batch_size=8", "--config.plots=true",
)


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("mnist") / "run"
    result = run_script(*tiny_args(workdir, *MNIST_FLAGS))
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, result


@pytest.mark.slow
def test_short_mnist_run_beats_chance(mnist_run):
    workdir, result = mnist_run
    results = json.loads((workdir / "results.json").read_text())
    assert results["status"] == "done" and results["epochs"] == 2 and results["step"] == 250
    assert results["test_accuracy_at_best_val"] > 0.6  # chance is 0.1
    assert results["final_test_accuracy"] > 0.6
    assert json.loads((workdir / "status.json").read_text())["status"] == "done"
    assert results["params"] == 4 * 26 + 12 * 12 * 4 * 10 + 10
    assert "done: 2 epochs" in result.stdout


@pytest.mark.slow
def test_run_writes_config_metrics_tensorboard_and_plots(mnist_run):
    workdir, _ = mnist_run
    config = tiny_config(dataset="mnist_5k", train_size=1000, validation_size=200,
                         test_size=300, batch_size=8, plots=True)
    assert json.loads((workdir / "config.json").read_text()) == json.loads(
        config_to_json(with_defaults(config)))

    records = read_records(workdir)
    first = records[0]
    assert first["kind"] == "shapes" and first["step"] == 0
    expected = [row.as_dict() for row in shape_table(build_network(config), (28, 28, 1))]
    assert first["table"] == json.loads(json.dumps(expected))
    assert [r["kind"] for r in records].count("shapes") == 1
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [(r["epoch"], r["step"]) for r in epochs] == [(1, 125), (2, 250)]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == list(range(10, 251, 10))
    steps = [r["step"] for r in records]
    assert steps == sorted(steps)

    scalars = read_tensorboard_scalars(workdir / "tensorboard")
    assert scalars["epoch/test_accuracy"] == pytest.approx(
        {r["step"]: r["test_accuracy"] for r in epochs}, rel=1e-6)
    assert sorted(scalars["train/loss"]) == [r["step"] for r in train]

    try:
        import matplotlib.image as mpimg

        import cnn_jax.plots  # noqa: F401  (written by the plots helper)
    except ImportError as error:
        pytest.skip(f"plots not checked: cnn_jax.plots is not importable ({error})")
    for name in ("kernels_conv1.png", "feature_maps.png", "learning_curves.png"):
        pixels = mpimg.imread(workdir / name)
        assert pixels.ndim == 3 and pixels.shape[0] > 50 and pixels.std() > 0, name
    assert not list(workdir.glob(".*.tmp"))


@pytest.mark.slow
def test_results_follow_nielsens_protocol(mnist_run):
    workdir, _ = mnist_run
    results = json.loads((workdir / "results.json").read_text())
    epochs = [r for r in read_records(workdir) if r["kind"] == "epoch"]
    best = max(epochs, key=lambda r: (r["val_accuracy"], -r["epoch"]))
    assert results["best_epoch"] == best["epoch"]
    assert results["best_val_accuracy"] == best["val_accuracy"]
    assert results["test_accuracy_at_best_val"] == best["test_accuracy"]
    assert results["final_test_accuracy"] == epochs[-1]["test_accuracy"]
    assert results["selection"] == "best validation accuracy"


def epoch_record(epoch, val, test):
    return {"kind": "epoch", "epoch": epoch, "val_accuracy": val, "test_accuracy": test,
            "train_loss": 1.0 / epoch, "train_accuracy": 0.5, "epoch_time_s": 1.0,
            "images_per_second": 10.0}


def test_summary_takes_test_accuracy_at_the_earliest_best_validation_epoch():
    history = [epoch_record(1, 0.90, 0.91), epoch_record(2, 0.95, 0.93),
               epoch_record(3, 0.95, 0.97), epoch_record(4, 0.94, 0.99)]
    results = summarize(history, status="done")
    assert results["best_epoch"] == 2 and results["test_accuracy_at_best_val"] == 0.93
    assert results["final_test_accuracy"] == 0.99 and results["epochs"] == 4


def test_summary_without_validation_never_selects_on_test_data():
    history = [epoch_record(1, None, 0.99), epoch_record(2, None, 0.90)]
    results = summarize(history, status="done")
    assert results["best_epoch"] == 2 and results["test_accuracy_at_best_val"] == 0.90
    assert results["selection"].startswith("final epoch")


@pytest.mark.slow
def test_one_and_four_cpu_devices_agree(mnist_run, tmp_path):
    single, _ = mnist_run
    workdir = tmp_path / "four"
    result = run_script(*tiny_args(workdir, *MNIST_FLAGS, "--config.plots=false"),
                        XLA_FLAGS="--xla_force_host_platform_device_count=4")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "devices: 4 × CPU" in result.stdout
    ones = [r for r in read_records(single) if r["kind"] == "epoch"]
    fours = [r for r in read_records(workdir) if r["kind"] == "epoch"]
    assert len(ones) == len(fours) == 2
    for one, four in zip(ones, fours, strict=True):
        for key in ("train_loss", "val_loss", "test_loss"):
            assert four[key] == pytest.approx(one[key], rel=1e-4), key
        for key in ("train_accuracy", "val_accuracy", "test_accuracy"):
            assert abs(four[key] - one[key]) <= 0.01, key
    # The reduction order over devices differs, so equal only to float rounding.
    a, b = leaves(checkpoint(single)[1]["params"]), leaves(checkpoint(workdir)[1]["params"])
    for key in a:
        np.testing.assert_allclose(b[key], a[key], atol=1e-4, rtol=1e-4, err_msg=key)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted in-process run of the tiny config (40 steps per epoch, 2 epochs)."""
    workdir = tmp_path_factory.mktemp("reference") / "run"
    results = train_and_evaluate(tiny_config(), workdir)
    assert results["status"] == "done"
    return workdir, results


@pytest.mark.parametrize(("stop_after", "signal_name"), [(25, "SIGINT"), (40, "SIGTERM")])
def test_stop_by_signal_then_resume_matches_an_uninterrupted_run(
        reference, tmp_path, stop_after, signal_name):
    """A stop mid-epoch (25) or on the last step of an epoch (40) saves and exits; rerunning
    ends with bitwise the same state and the same metrics records."""
    workdir = tmp_path / "run"
    stopped = train_and_evaluate(tiny_config(), workdir,
                                 hooks=[kill_after(stop_after, signal_name)])
    assert stopped["status"] == "interrupted" and stopped["step"] == stop_after
    assert json.loads((workdir / "status.json").read_text())["status"] == "interrupted"
    assert checkpoint(workdir)[0] == stop_after
    resumed = train_and_evaluate(tiny_config(), workdir)

    expected_dir, expected = reference
    assert without_timing(resumed) == without_timing(expected)
    assert read_records(workdir) == read_records(expected_dir)
    assert_trees_equal(checkpoint(workdir)[1], checkpoint(expected_dir)[1])


def test_finished_run_returns_its_results_without_training(reference):
    workdir, expected = reference
    before = (workdir / "metrics.jsonl").read_text()
    again = train_and_evaluate(tiny_config(), workdir)
    assert again == json.loads(json.dumps(expected))
    assert (workdir / "metrics.jsonl").read_text() == before


def test_missing_dataset_raises_a_clear_error(tmp_path):
    from cnn_jax.data import DatasetNotAvailableError

    empty = tmp_path / "empty_data"
    empty.mkdir()
    config = tiny_config(dataset="tfds:mnist", data_dir=str(empty), train_size=0, test_size=0)
    with pytest.raises(DatasetNotAvailableError) as caught:
        train_and_evaluate(config, tmp_path / "run")
    message = str(caught.value)
    assert str(empty) in message and "download_and_prepare" in message


def test_validation_split_may_be_empty(tmp_path):
    config = tiny_config(validation_size=0, num_epochs=1)
    results = train_and_evaluate(config, tmp_path / "run")
    assert results["status"] == "done" and results["best_val_accuracy"] is None
    assert results["selection"].startswith("final epoch")
    assert not math.isnan(results["test_accuracy_at_best_val"])
