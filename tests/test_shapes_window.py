"""One window geometry: a layer plan's `Window` holds both axes of the size formula and gives the
`lax` arguments that `conv2d`, `local2d`, `pool2d` and every formulation take.

The numbers are worked out by hand from out = floor((in + pad_lo + pad_hi − d·(k − 1) − 1)/s) + 1
and, for 'SAME', out = ceil(in/s) with total padding (out − 1)·s + k − in split low-first.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
import pytest

from cnn_jax import Conv, LayerError, LocallyConnected, Pool, ShapeError, conv2d, local2d, pool2d
from cnn_jax.layers.formulations import (
    Formulation,
    conv2d_canonical,
    conv2d_im2col,
    conv2d_offsets,
    pool2d_reshape,
)
from cnn_jax.shapes import Window

CONVS = [conv2d, conv2d_im2col, conv2d_offsets, conv2d_canonical]


def random(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


def test_a_conv_plan_window_gives_the_lax_arguments_per_axis():
    plan = Conv(2, kernel=(3, 5), stride=(1, 2), padding=(0, 1), dilation=(2, 1)).plan(
        "c", (20, 30, 1))
    window = plan.geometry
    assert isinstance(window, Window)
    rows, cols = window
    assert (rows.axis, cols.axis) == ("height", "width")
    assert window.kernel == (3, 5)
    assert window.strides == (1, 2)
    assert window.padding == ((0, 0), (1, 1))
    assert window.dilation == (2, 1)
    assert window.size_out == (16, 14) == plan.output_shape[:2]  # (20−4−1)/1+1, ⌊(30+2−4−1)/2⌋+1
    assert not window.unpadded


def test_a_same_pool_plan_window_pads_low_side_first():
    # 7 rows, window 3, stride 2: out 4, total pad 3·2+3−7 = 2 → (1, 1); 8 columns: 3·2+3−8 = 1
    window = Pool("max", 3, stride=2, padding="SAME").plan("p", (7, 8, 4)).geometry
    assert (window.kernel, window.strides) == ((3, 3), (2, 2))
    assert window.padding == ((1, 1), (0, 1))
    assert window.size_out == (4, 4)
    assert Pool("avg", 2).plan("p", (6, 6, 1)).geometry.unpadded


@pytest.mark.parametrize("stride", [1, (2, 1)])  # 1: conv2d_canonical's own gradients
@pytest.mark.parametrize("conv", CONVS, ids=lambda f: f.__name__)
def test_a_plan_window_computes_what_its_keywords_compute(conv, stride):
    x = random((2, 11, 9, 1))  # one channel: conv2d_offsets sums over offsets
    keywords = dict(stride=stride, padding=((1, 0), (2, 1)), dilation=(1, 2))
    plan = Conv(3, kernel=3, **keywords).plan("c", (11, 9, 1))
    kernel, bias = random((3, 3, 1, 3), 1), random((3,), 2)
    np.testing.assert_array_equal(conv(x, kernel, bias, plan.geometry),
                                  conv(x, kernel, bias, **keywords))
    assert conv(x, kernel, bias, plan.geometry).shape == (2, *plan.output_shape)


def test_local2d_and_pool2d_take_a_plan_window():
    x = random((2, 8, 7, 2))
    plan = LocallyConnected(3, kernel=(3, 2), stride=2, padding=1).plan("l", (8, 7, 2))
    kernel = random((*plan.output_shape[:2], 3, 2, 2, 3), 1)
    bias = random(plan.output_shape, 2)
    np.testing.assert_array_equal(local2d(x, kernel, bias, plan.geometry),
                                  local2d(x, kernel, bias, stride=2, padding=1))
    pool = Pool("avg", 3, stride=2, padding=1).plan("p", (8, 7, 2))
    for function in (pool2d, pool2d_reshape):
        np.testing.assert_array_equal(function(x, "avg", pool.geometry),
                                      pool2d(x, "avg", (3, 3), (2, 2), 1))
    # reshape pooling: window = stride and no padding; its default stride is the window's
    unpadded = Pool("max", 2).plan("p", (8, 7, 2)).geometry
    np.testing.assert_allclose(pool2d_reshape(x, "max", unpadded), pool2d(x, "max", 2))


def test_a_formulation_computes_a_layer_from_its_window():
    x, kernel, bias = random((2, 10, 10, 1)), random((3, 3, 1, 2), 1), random((2,), 2)
    conv = Conv(2, 3, padding="SAME").plan("c", (10, 10, 1)).geometry
    pool = Pool("max", 2).plan("p", (10, 10, 2)).geometry
    fast = Formulation("offsets", "reshape")
    y = fast.conv2d(x, kernel, bias, conv)
    np.testing.assert_allclose(y, conv2d(x, kernel, bias, padding="SAME"), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast.pool2d(y, "max", pool), pool2d(y, "max", (2, 2), (2, 2)))


@pytest.mark.parametrize("call", [
    functools.partial(conv2d, stride=2), functools.partial(conv2d_im2col, padding=1),
    functools.partial(local2d, dilation=1),
], ids=["conv2d", "conv2d_im2col", "local2d"])
def test_a_window_and_keywords_together_are_refused(call):
    window = Conv(2, 3).plan("c", (6, 6, 1)).geometry
    with pytest.raises(LayerError, match="give a window or stride/padding/dilation, not both"):
        call(jnp.ones((1, 6, 6, 1)), jnp.ones((3, 3, 1, 2)), jnp.zeros(2), window)
    with pytest.raises(LayerError, match="give a Window or stride/padding, not both"):
        pool2d(jnp.ones((1, 6, 6, 1)), "max", Pool("max", 2).plan("p", (6, 6, 1)).geometry, 2)


def test_a_window_of_other_shapes_is_refused_naming_both():
    window = Conv(2, 3).plan("c", (12, 12, 1)).geometry
    with pytest.raises(ShapeError, match=r"layer 'conv2d' \(conv\): the window is for a 12×12 "
                       r"input and a 3×3 kernel, but this call has a 10×10 input and a 3×3 one"):
        conv2d(jnp.ones((1, 10, 10, 1)), jnp.ones((3, 3, 1, 2)), jnp.zeros(2), window)
    with pytest.raises(ShapeError, match=r"layer 'conv2d_canonical' \(conv\): the window is for "
                       r"a 12×12 input and a 3×3 kernel, but this call has a 12×12 input and a "
                       r"5×5 one"):
        conv2d_canonical(jnp.ones((1, 12, 12, 1)), jnp.ones((5, 5, 1, 2)), jnp.zeros(2), window)
    pool = Pool("max", 2).plan("p", (12, 12, 1)).geometry
    with pytest.raises(ShapeError, match=r"layer 'pool2d_reshape' \(pool\): the window is for a "
                       r"12×12 input and a 2×2 window, but this call has a 8×8 input"):
        pool2d_reshape(jnp.ones((1, 8, 8, 1)), "max", pool)
