"""The receptive field: the gradient map of a linear stack of all-ones kernels is known by hand
(a box convolved with boxes), and its support is the theoretical field."""

import jax
import numpy as np
import pytest

from cnn_jax import Conv, Dense, Network, Pool
from cnn_jax.errors import ShapeError
from cnn_jax.receptive_field import central_unit, effective_field, theoretical_fields
from cnn_jax.summary import shape_table
from cnn_jax.train.state import init_params


def ones_params(network, input_shape):
    """Every kernel 1, every bias 0: each unit is the plain sum of what its window sees."""
    params = init_params(network, jax.random.key(0), input_shape)
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: np.ones(leaf.shape, np.float32) if path[-1].key == "kernel"
        else np.zeros(leaf.shape, np.float32), params)


def path_counts(size, layers, unit):
    """NumPy loops: how many times each input pixel enters unit `unit` of the last layer of a
    linear all-ones stack of single-map convs; layers are (k, stride, pad, dilation)."""
    # Walk back from the unit: weights on the positions of each layer's (unpadded) output.
    sizes = [size]
    for k, s, p, d in layers:
        sizes.append((sizes[-1] + 2 * p - d * (k - 1) - 1) // s + 1)
    weight = np.zeros((sizes[-1], sizes[-1]))
    weight[unit] = 1.0
    for (k, s, p, d), size_in in zip(reversed(layers), reversed(sizes[:-1]), strict=True):
        below = np.zeros((size_in, size_in))
        for i in range(weight.shape[0]):
            for j in range(weight.shape[1]):
                for a in range(k):
                    for b in range(k):
                        r, c = i * s + a * d - p, j * s + b * d - p
                        if 0 <= r < size_in and 0 <= c < size_in:  # else: a zero of the padding
                            below[r, c] += weight[i, j]
        weight = below
    return weight


def test_two_3x3_convs_give_the_box_convolved_with_a_box():
    network = Network.from_layers([Conv(1, 3, activation="identity"),
                                   Conv(1, 3, activation="identity")])
    images = np.random.default_rng(0).normal(size=(3, 9, 9, 1)).astype(np.float32)
    heat = effective_field(network, ones_params(network, (9, 9, 1)), images, "conv2")
    # conv2 is 5×5, its central unit (2, 2) sees rows/cols 2..6 with weights [1,2,3,2,1]
    line = np.convolve(np.ones(3), np.ones(3))
    expected = np.zeros((9, 9))
    expected[2:7, 2:7] = np.outer(line, line)
    np.testing.assert_allclose(heat, expected, atol=1e-5)
    field = theoretical_fields(network, (9, 9, 1))["conv2"]
    assert field.size == (5, 5) and field.window(central_unit(field.output_shape)) == (
        (2, 6), (2, 6))


@pytest.mark.parametrize("layers", [
    [(3, 2, 1, 1), (3, 1, 0, 2)],          # stride 2 with padding, then a dilated kernel
    [(5, 1, 2, 1), (2, 2, 0, 1), (3, 1, 1, 1)],
    [(4, 3, 0, 1), (2, 1, 0, 1)],
])
def test_strided_padded_dilated_stack_matches_the_path_counts(layers):
    size = 15
    network = Network.from_layers([Conv(1, k, stride=s, padding=p, dilation=d,
                                        activation="identity") for k, s, p, d in layers])
    name = network.names[-1]
    field = theoretical_fields(network, (size, size, 1))[name]
    unit = central_unit(field.output_shape)
    images = np.ones((2, size, size, 1), np.float32)
    heat = effective_field(network, ones_params(network, (size, size, 1)), images, name)
    expected = path_counts(size, layers, unit)
    np.testing.assert_allclose(heat, expected, atol=1e-4)
    # the support is the theoretical window, clipped to the image
    (top, bottom), (left, right) = field.window(unit)
    rows, cols = np.nonzero(expected)
    assert (rows.min(), rows.max()) == (max(top, 0), min(bottom, size - 1))
    assert (cols.min(), cols.max()) == (max(left, 0), min(right, size - 1))


def test_fields_agree_with_the_shape_table_and_stop_at_dense():
    network = Network.from_layers([Conv(4, 5), Pool("max", 2), Conv(4, 3, dilation=2),
                                   Pool("avg", 3, stride=2), Dense(10, "identity")])
    fields = theoretical_fields(network, (28, 28, 1))
    assert list(fields) == ["conv1", "pool1", "conv2", "pool2"]
    for row in shape_table(network, (28, 28, 1)):
        if row.name in fields:
            assert str(fields[row.name].size[0]) == row.receptive_field
            assert str(fields[row.name].jump[0]) == row.jump


def test_relu_network_support_lies_inside_the_theoretical_field():
    network = Network.from_layers([Conv(3, 5), Pool("max", 2), Conv(3, 3)])
    params = init_params(network, jax.random.key(1), (20, 20, 1))
    images = jax.random.uniform(jax.random.key(2), (8, 20, 20, 1))
    heat = effective_field(network, params, images, "conv2")
    field = theoretical_fields(network, (20, 20, 1))["conv2"]
    (top, bottom), (left, right) = field.window(central_unit(field.output_shape))
    outside = heat.copy()
    outside[top:bottom + 1, left:right + 1] = 0
    assert heat.sum() > 0 and not outside.any()


def test_bad_layer_or_unit_is_refused():
    network = Network.from_layers([Conv(1, 3), Dense(2, "identity")])
    params = init_params(network, jax.random.key(0), (6, 6, 1))
    images = np.zeros((1, 6, 6, 1), np.float32)
    with pytest.raises(ShapeError, match="no image-shaped output"):
        effective_field(network, params, images, "dense1")
    with pytest.raises(ShapeError, match="outside"):
        effective_field(network, params, images, "conv1", unit=(4, 0))
