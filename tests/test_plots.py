"""Plots: readable PNGs, symmetric shared colour scales for kernels, no figure left open; figures a
student reads without help (the reported epoch marked, colour scales and the prediction beside
feature maps, honest bar axes, heat maps that say what they average and what is missing, the
chapter 6 curves on one axis of images seen)."""

from __future__ import annotations

import json
import types
from pathlib import Path

import jax
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

from cnn_jax import LocallyConnected, Network, preset
from cnn_jax import plots as plots_module
from cnn_jax.plots import (
    _feature_maps_figure,
    _feature_maps_for_figure,
    _kernels_figure,
    _learning_curves_figure,
    _local_figure,
    _reported_epoch,
    _symmetric_limit,
    plot_feature_maps,
    plot_feature_maps_for,
    plot_kernels,
    plot_learning_curves,
    plot_local_kernels,
    plot_network_kernels,
)
from cnn_jax.train.state import init_params


@pytest.fixture(autouse=True)
def no_open_figures():
    plt.close("all")
    yield
    assert len(plt.get_fignums()) == 0


def read_png(path, min_height=100, min_width=100):
    assert path.exists() and path.stat().st_size > 0
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4)
    assert pixels.shape[0] >= min_height and pixels.shape[1] >= min_width
    assert pixels.std() > 0  # not a blank canvas
    return pixels


def random_kernel(shape, seed=0):
    return np.random.default_rng(seed).normal(0.0, 0.3, shape).astype(np.float32)


def clims(fig):
    return [image.get_clim() for ax in fig.axes for image in ax.get_images()]


def test_symmetric_limit_hand_example():
    assert _symmetric_limit(np.array([[-3.0, 1.0], [2.0, 0.5]])) == 3.0
    assert _symmetric_limit(np.array([0.25, -0.5, np.nan])) == 0.5
    assert _symmetric_limit(np.zeros((5, 5))) == 1.0  # a degenerate scale is never produced


def test_kernel_grid_shares_one_symmetric_scale():
    kernel = random_kernel((5, 5, 1, 20))
    fig = _kernels_figure(kernel)
    limits = clims(fig)
    assert len(limits) == 20
    m = float(np.abs(kernel).max())
    assert all(low == pytest.approx(-m) and high == pytest.approx(m) for low, high in limits)
    grid = [ax for ax in fig.axes if ax.get_images() and ax.get_visible()]
    assert {ax.get_subplotspec().get_gridspec().get_geometry() for ax in grid} == {(4, 5)}
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)


def test_plot_kernels_first_layer(tmp_path):
    path = plot_kernels(random_kernel((5, 5, 1, 20)), tmp_path / "k1.png", title="CP(20)")
    assert path == tmp_path / "k1.png"
    read_png(path)


def test_plot_kernels_second_layer_channel(tmp_path):
    kernel = random_kernel((5, 5, 20, 40), seed=1)
    fig = _kernels_figure(kernel, input_channel=3)
    m = float(np.abs(kernel[:, :, 3]).max())
    assert all(low == pytest.approx(-m) and high == pytest.approx(m) for low, high in clims(fig))
    read_png(plot_kernels(kernel, tmp_path / "sub" / "k2.png", input_channel=3, columns=8))
    with pytest.raises(ValueError, match="input_channel"):
        plot_kernels(kernel, tmp_path / "bad.png", input_channel=20)


def test_plot_local_kernels(tmp_path):
    kernel = random_kernel((24, 24, 5, 5, 1, 3), seed=2)
    fig = _local_figure(kernel, map_index=2)
    ((low, high),) = clims(fig)
    assert low == -high and high > 0
    mosaic = fig.axes[0].get_images()[0].get_array()
    assert mosaic.shape == (12 * 6 - 1, 12 * 6 - 1)  # 24×24 positions subsampled to 12×12
    np.testing.assert_allclose(mosaic[:5, :5], kernel[0, 0, :, :, 0, 2])
    np.testing.assert_allclose(mosaic[-5:, -5:], kernel[-1, -1, :, :, 0, 2])
    read_png(plot_local_kernels(kernel, tmp_path / "local.png", map_index=2))


def test_plot_feature_maps_direct(tmp_path):
    rng = np.random.default_rng(3)
    activations = {"conv1": rng.random((24, 24, 20)), "pool1": rng.random((12, 12, 20)),
                   "dense1": rng.random(100)}
    read_png(plot_feature_maps(activations, rng.random((28, 28, 1)), tmp_path / "fm.png",
                               max_maps=8))


def test_feature_maps_of_course_preset(tmp_path):
    network = Network.from_layers(preset("course_3maps"))
    params = init_params(network, jax.random.key(0), (28, 28, 1))
    image = np.random.default_rng(4).random((28, 28, 1)).astype(np.float32)
    read_png(plot_feature_maps_for(network, params, image, tmp_path / "maps.png", label=3))


def test_network_kernels(tmp_path):
    layers = [*preset("nielsen_cp2_fc100")[:4], LocallyConnected(2, 3)]  # CP(20) CP(40) local
    network = Network.from_layers(layers)
    params = init_params(network, jax.random.key(0), (28, 28, 1))
    paths = plot_network_kernels(network, params, tmp_path)
    names = ["kernels_conv1.png", "kernels_conv2.png", "local_kernels_local1.png"]
    assert paths == [tmp_path / name for name in names]
    for path in paths:
        read_png(path)


def test_learning_curves_with_missing_keys(tmp_path):
    history = [
        {"epoch": 1, "train_loss": 0.9, "train_accuracy": 0.7, "val_accuracy": None},
        {"epoch": 2, "train_loss": 0.5, "val_accuracy": 0.9, "test_accuracy": 0.91},
        {"epoch": 3, "train_loss": 0.3, "train_accuracy": 0.95, "val_accuracy": 0.93},
    ]
    read_png(plot_learning_curves(history, tmp_path / "curves.png"), min_width=400)
    read_png(plot_learning_curves([{"epoch": 1, "val_accuracy": 0.5}], tmp_path / "acc.png"))


# --- learning curves: the reported epoch, train / validation / test, units ---

def epoch_record(epoch, val, test, train=0.9):
    """A full epoch record as `cnn_jax.train.run.fit` logs it."""
    return {"epoch": epoch, "step": 100 * epoch, "train_loss": 1.0 / epoch,
            "train_accuracy": train, "val_loss": 0.5 / epoch, "val_accuracy": val,
            "test_loss": 0.6 / epoch, "test_accuracy": test, "epoch_time_s": 1.0,
            "images_per_second": 100.0}


def vertical_lines(ax):
    return [line for line in ax.get_lines()
            if len(set(line.get_xdata())) == 1 and len(line.get_xdata()) == 2]


def legend_texts(fig):
    return [text.get_text() for legend in fig.legends for text in legend.get_texts()]


def test_learning_curves_mark_the_best_validation_epoch():
    history = [epoch_record(1, 0.90, 0.89), epoch_record(2, 0.95, 0.94),
               epoch_record(3, 0.95, 0.96), epoch_record(4, 0.93, 0.97)]  # tie: earliest wins
    fig = _learning_curves_figure(history)
    label = "best validation: epoch 2, test 94.00%"
    loss_ax, accuracy_ax = fig.axes
    for ax in (loss_ax, accuracy_ax):
        (line,) = vertical_lines(ax)
        assert list(line.get_xdata()) == [2, 2] and line.get_label() == label
    assert legend_texts(fig) == ["train", "validation", "test", label]
    assert accuracy_ax.get_ylabel() == "accuracy (%)"
    assert "loss" in loss_ax.get_ylabel() and "(" in loss_ax.get_ylabel()
    curves = {line.get_label(): line for line in accuracy_ax.get_lines()}
    np.testing.assert_allclose(curves["validation"].get_ydata(), [90, 95, 95, 93])
    np.testing.assert_allclose(curves["test"].get_ydata(), [89, 94, 96, 97])


def test_reported_epoch_is_the_one_results_reports():
    from cnn_jax.train.results import summarize

    history = [epoch_record(1, 0.80, 0.70), epoch_record(2, 0.85, 0.75),
               epoch_record(3, 0.85, 0.90), epoch_record(4, 0.84, 0.95)]
    results = summarize(history)
    assert _reported_epoch(history) == (results["best_epoch"],
                                        results["test_accuracy_at_best_val"], True)
    no_val = [{**r, "val_accuracy": None, "val_loss": None} for r in history]
    results = summarize(no_val)
    assert results["best_epoch"] == 4
    assert _reported_epoch(no_val) == (4, results["test_accuracy_at_best_val"], False)
    assert _reported_epoch([]) is None


def test_learning_curves_without_validation_mark_the_final_epoch(tmp_path):
    history = [{**epoch_record(e, None, 0.5 + 0.1 * e), "val_loss": None} for e in (1, 2, 3)]
    fig = _learning_curves_figure(history)
    label = "final epoch 3 (no validation): test 80.00%"
    assert [line.get_label() for line in vertical_lines(fig.axes[1])] == [label]
    assert legend_texts(fig) == ["train", "test", label]
    fig = _learning_curves_figure([{"epoch": 1, "val_accuracy": 0.5}])  # no test accuracy
    assert legend_texts(fig)[-1] == "best validation: epoch 1, test n/a"
    read_png(plot_learning_curves(history, tmp_path / "noval.png"), min_width=400)


# --- feature maps: a colour scale per layer, the true and the predicted label ---

def colorbars(fig):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def all_texts(fig):
    return "\n".join(text.get_text() for ax in fig.axes for text in ax.texts)


def test_feature_maps_have_a_labelled_colour_scale_per_layer_and_the_prediction():
    rng = np.random.default_rng(3)
    activations = {"conv1": rng.random((24, 24, 20)), "pool1": 5 * rng.random((12, 12, 20)),
                   "dense1": rng.random(100)}
    fig = _feature_maps_figure(activations, rng.random((28, 28, 1)), max_maps=8, label=3,
                               prediction=(5, 0.8))
    bars = colorbars(fig)
    assert len(bars) == 3  # the input's pixel scale, conv1, pool1 (dense1 is no image)
    assert all(bar.get_ylabel() for bar in bars)
    assert sorted(bar.get_ylabel() for bar in bars) == ["activation", "activation", "pixel value"]
    rows = {}
    for ax in fig.axes:
        for image in ax.get_images():
            rows.setdefault(ax.get_subplotspec().rowspan.start, set()).add(image.get_clim())
    assert all(len(limits) == 1 for limits in rows.values())  # one scale per layer
    scales = sorted(tuple(np.round(bar.get_ylim(), 5)) for bar in bars)
    assert scales == sorted(tuple(np.round(next(iter(v)), 5)) for v in rows.values())
    text = all_texts(fig)
    assert "true label: 3" in text and "predicted: 5" in text and "(p = 80.0%)" in text
    assert "wrong" in text


def test_feature_maps_for_predict_with_the_softmax_of_the_network():
    network = Network.from_layers(preset("course_3maps"))
    params = init_params(network, jax.random.key(0), (28, 28, 1))
    image = np.random.default_rng(4).random((28, 28, 1)).astype(np.float32)
    probabilities = np.asarray(jax.nn.softmax(network.apply(params, image[None]), axis=-1))[0]
    predicted = int(probabilities.argmax())
    fig = _feature_maps_for_figure(network, params, image, label=predicted)
    text = all_texts(fig)
    assert f"true label: {predicted}" in text and f"predicted: {predicted}" in text
    assert f"(p = {100 * probabilities[predicted]:.1f}%)" in text and "correct" in text
    assert len(colorbars(fig)) == 1 + 2  # input, conv1, pool1
    assert "true label" not in all_texts(_feature_maps_for_figure(network, params, image))


def test_run_plots_pass_the_true_label_of_the_first_test_image(tmp_path, monkeypatch):
    from cnn_jax.train import results

    network = Network.from_layers(preset("course_3maps"))
    params = init_params(network, jax.random.key(0), (28, 28, 1))
    images = np.random.default_rng(5).random((4, 28, 28, 1)).astype(np.float32)
    test = types.SimpleNamespace(images=jax.numpy.asarray(images), size=4,
                                 labels=jax.numpy.asarray([7, 1, 2, 3]))
    seen = {}
    real = plots_module.plot_feature_maps_for

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(plots_module, "plot_feature_maps_for", spy)
    names = results._plot(tmp_path, network, types.SimpleNamespace(params=params), test,
                          [epoch_record(1, 0.5, 0.4)])
    assert seen["label"] == 7 and isinstance(seen["label"], int)
    assert "feature_maps.png" in names and "learning_curves.png" in names
    read_png(tmp_path / "feature_maps.png")


# --- why CNNs: bars from 0, each labelled ---

def test_why_cnn_bars_start_at_zero_and_are_labelled(tmp_path):
    from cnn_jax.research import why_cnn

    accuracies, params = [0.912, 0.955, 0.968, None], [23_870, 414_730, 115_730, 29_330]
    results = [why_cnn.VariantResult(variant, {"test_accuracy_at_best_val": a, "params": p}, 0,
                                     1.0, tmp_path)
               for variant, a, p in zip(why_cnn.variants(), accuracies, params, strict=True)]
    fig = why_cnn._bars_figure(results)
    accuracy_ax, params_ax = fig.axes
    assert accuracy_ax.get_ylim()[0] == 0 and accuracy_ax.get_ylim()[1] >= 100
    assert "(%)" in accuracy_ax.get_ylabel()
    assert [t.get_text() for t in accuracy_ax.texts] == ["91.20%", "95.50%", "96.80%", "n/a"]
    assert [t.get_text() for t in params_ax.texts] == ["23,870", "414,730", "115,730", "29,330"]
    assert params_ax.get_yscale() == "log" and "log" in params_ax.get_ylabel()
    read_png(why_cnn.plot_bars(results, tmp_path / "bars.png"), min_width=400)


# --- sweep plots: what a cell averages, what is missing ---

def sweep_rows():
    """2 × 2 × 2 configurations of 3 seeds: some unfinished, one impossible."""
    def row(k, s, p, done, accuracy, reason=None):
        return {"group": f"k{k}-s{s}-p{p}", "model.layers[0].kernel": k,
                "model.layers[0].stride": s, "model.layers[1].pool_type": p, "seeds": 3,
                "done": done, "test_accuracy_mean": accuracy,
                "test_accuracy_std": 0.01 if done > 1 else None, "reason": reason,
                "params": 1000 * k, "macs": 10_000 * k // s}

    return [row(5, 1, "max", 3, 0.90), row(5, 1, "none", 1, 0.60), row(5, 3, "max", 3, 0.70),
            row(5, 3, "none", 3, 0.72), row(9, 1, "max", 2, 0.85), row(9, 1, "none", 3, 0.88),
            row(9, 3, "max", 0, None, reason="conv2 does not fit"),
            row(9, 3, "none", 0, None)]


def sweep_dims():
    from cnn_jax.sweep.grid import Dimension

    return (Dimension(("model.layers[0].kernel",), ("k",), ((5,), (9,))),
            Dimension(("model.layers[0].stride",), ("s",), ((1,), (3,))),
            Dimension(("model.layers[1].pool_type",), ("p",), (("max",), ("none",))))


def test_heatmap_says_what_it_averages_and_marks_unfinished_cells():
    from cnn_jax.sweep.plots import _heatmap_figure

    k, s, p = sweep_dims()
    fig = _heatmap_figure(k, s, sweep_rows(), others=[p], seeds=3)
    ax = fig.axes[0]
    title = ax.get_title()
    assert "mean test accuracy (%)" in title and "over 3 seeds and the other axes (p)" in title
    assert "hatched" in title
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text()
             for t in ax.texts}
    # (k5, s1): 3 trials at 90% and 1 at 60% of 6: the mean of the 4 finished, and it says so
    assert cells == {(0, 0): "82.5\n4/6 trials", (0, 1): "71.0",
                     (1, 0): "86.8\n5/6 trials", (1, 1): "n/a\n0/6 trials\n(3 invalid)"}
    hatched = [patch for patch in ax.patches if patch.get_hatch()]
    assert sorted(patch.get_xy() for patch in hatched) == [(-0.5, -0.5), (-0.5, 0.5),
                                                            (0.5, 0.5)]
    grid = ax.get_images()[0].get_array()
    assert grid.mask[1, 1] and not grid.mask[0, 0]  # no colour for a cell without a value


def test_heatmap_of_a_finished_sweep_has_no_marks_and_counts_seeds_from_rows():
    from cnn_jax.sweep.plots import _heatmap_figure

    k, s, p = sweep_dims()
    rows = [{**r, "done": 3, "test_accuracy_mean": r["test_accuracy_mean"] or 0.5}
            for r in sweep_rows() if not r["reason"]]
    ax = _heatmap_figure(k, s, rows, others=[p]).axes[0]
    assert "over 3 seeds and the other axes (p)" in ax.get_title()
    assert "hatched" not in ax.get_title() and not [q for q in ax.patches if q.get_hatch()]
    texts = {t.get_text() for t in ax.texts}
    assert "\n" not in "".join(texts) and "70.0" not in texts  # (k9, s3): 1 config, 50%


def test_dimension_plot_says_what_a_point_averages_and_marks_missing_points():
    from cnn_jax.sweep.plots import _dimension_figure

    k, s, p = sweep_dims()
    fig = _dimension_figure(k, [s, p], sweep_rows(), seeds=3)
    ax = fig.axes[0]
    assert "mean over 3 seeds" in ax.get_title() and "hollow" in ax.get_title()
    labels = legend_texts(fig)
    assert "s=3, p=max (k=9: invalid)" in labels
    assert "s=3, p=none (k=9: n/a, 0/3 trials)" in labels
    assert sorted(t.get_text() for t in ax.texts) == ["1/3", "2/3"]
    hollow = [line for line in ax.get_lines() if line.get_markerfacecolor() == "white"]
    assert len(hollow) == 2


def test_sweep_make_plots_writes_readable_pngs(tmp_path):
    from cnn_jax.sweep.plots import make_plots

    manifest = {"dimensions": [d.as_dict() for d in sweep_dims()], "seeds": [0, 1, 2]}
    made = make_plots(manifest, sweep_rows(), tmp_path)
    assert len(made) == 3 + 2 + 3
    for _, path in made:
        read_png(path, min_width=400)
    assert len(plt.get_fignums()) == 0


# --- chapter 6 curves: one axis of images seen ---

def fake_run(folder: Path, epochs: int, steps_per_epoch: int, batch_size: int = 10) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"batch_size": batch_size}))
    records = [{"kind": "train", "step": 1, "epoch": 1, "loss": 1.0}] + [
        {"kind": "epoch", **epoch_record(e, 0.9 + 0.01 * e, 0.9), "step": steps_per_epoch * e}
        for e in range(1, epochs + 1)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_nielsen_curves_share_an_axis_of_images_seen(tmp_path):
    from cnn_jax.research import nielsen
    from cnn_jax.research.nielsen_report import _curves_figure, plot_curves

    plain = fake_run(tmp_path / "row4", 5, 5_000)
    expanded = fake_run(tmp_path / "row5", 2, 25_000)  # 5× the data: 5× the steps per epoch
    results = [nielsen.RowResult(nielsen.ROWS[3], [0.9], 1.0, 5, [plain], (28, 28, 1)),
               nielsen.RowResult(nielsen.ROWS[4], [0.9], 1.0, 2, [expanded], (28, 28, 1)),
               nielsen.RowResult(nielsen.ROWS[7], [0.9], 1.0, 2, [expanded], (28, 28, 1))]
    fig = _curves_figure(results)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == ["row 4: as 3, ReLU, λ = 0.1", "row 5: as 4, expanded data"]
    row4, row5 = lines.values()
    np.testing.assert_array_equal(row4.get_xdata(), [50_000 * e for e in range(1, 6)])
    np.testing.assert_array_equal(row5.get_xdata(), [250_000, 500_000])  # epoch 1 = 250k
    np.testing.assert_allclose(row4.get_ydata(), [91, 92, 93, 94, 95])
    assert "images seen" in ax.get_xlabel() and "batch size 10" in ax.get_xlabel()
    assert ax.get_ylabel() == "validation accuracy (%)"
    assert legend_texts(fig) == list(lines)
    read_png(plot_curves(results, tmp_path / "curves.png"), min_width=400)
