"""Plots: readable PNGs, symmetric shared colour scales for kernels, no figure left open."""

from __future__ import annotations

import jax
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

from cnn_jax import LocallyConnected, Network, preset
from cnn_jax.plots import (
    _kernels_figure,
    _local_figure,
    _symmetric_limit,
    plot_feature_maps,
    plot_feature_maps_for,
    plot_kernels,
    plot_learning_curves,
    plot_local_kernels,
    plot_network_kernels,
)


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
    params = network.init(jax.random.key(0), (28, 28, 1))
    image = np.random.default_rng(4).random((28, 28, 1)).astype(np.float32)
    read_png(plot_feature_maps_for(network, params, image, tmp_path / "maps.png"))


def test_network_kernels(tmp_path):
    layers = [*preset("nielsen_cp2_fc100")[:4], LocallyConnected(2, 3)]  # CP(20) CP(40) local
    network = Network.from_layers(layers)
    params = network.init(jax.random.key(0), (28, 28, 1))
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
