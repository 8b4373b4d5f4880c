"""Layers against independent truth: the course's worked examples and literal NumPy loops.

Convolution and the locally connected layer are compared with a loop that computes, neuron by
neuron, σ(b + Σ_c Σ_l Σ_m w_{l,m} · a_{j·s+l·d, k·s+m·d}); pooling with a loop over windows that
skips padded positions; gradients with finite differences (`jax.test_util.check_grads`, in x64).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from cnn_jax import (
    Conv,
    Dense,
    Dropout,
    LocallyConnected,
    Network,
    Pool,
    conv2d,
    dense,
    dropout,
    local2d,
    pool2d,
)

# The course's pooling example: one 4×4 feature map.
COURSE_MAP = [[0, 2, 2, 1], [4, 3, 0, 1], [2, 1, 3, 2], [3, 1, 2, 0]]
COURSE_MAX = [[4, 2], [3, 3]]
COURSE_AVG = [[9 / 4, 4 / 4], [7 / 4, 7 / 4]]


def as_batch(feature_map) -> jnp.ndarray:
    """A 2-D map as a (1, H, W, 1) float32 batch."""
    return jnp.asarray(feature_map, jnp.float32)[None, :, :, None]


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def out_size(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int, dilation: int) -> int:
    """The course's formula, written out independently of cnn_jax.shapes."""
    return (size + pad_lo + pad_hi - dilation * (kernel - 1) - 1) // stride + 1


def random_array(seed: int, shape) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# NumPy references: literal loops, one output neuron at a time.
# ---------------------------------------------------------------------------------------------


def numpy_windowed(x, weight_at, bias_at, stride, padding, dilation, kh, kw, maps):
    """σ-free z_{j,k,f} = b + Σ_c Σ_l Σ_m w_{l,m,c,f} · a_{j·s+l·d, k·s+m·d, c} on a padded input.

    `weight_at(j, k)` gives the (kh, kw, cin, maps) kernel used at output position (j, k),
    `bias_at(j, k)` the (maps,) bias there.
    """
    batch, height, width, channels = x.shape
    (top, bottom), (left, right) = padding
    padded = np.zeros((batch, height + top + bottom, width + left + right, channels), np.float64)
    padded[:, top:top + height, left:left + width, :] = x
    out_h = out_size(height, kh, stride[0], top, bottom, dilation[0])
    out_w = out_size(width, kw, stride[1], left, right, dilation[1])
    z = np.zeros((batch, out_h, out_w, maps), np.float64)
    for n in range(batch):
        for j in range(out_h):
            for k in range(out_w):
                w, b = weight_at(j, k), bias_at(j, k)
                for f in range(maps):
                    total = float(b[f])
                    for c in range(channels):
                        for ll in range(kh):  # l of the formula (E741 forbids a lone l)
                            for m in range(kw):
                                row = j * stride[0] + ll * dilation[0]
                                col = k * stride[1] + m * dilation[1]
                                total += w[ll, m, c, f] * padded[n, row, col, c]
                    z[n, j, k, f] = total
    return z


def numpy_conv(x, kernel, bias, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1)):
    kh, kw, _, maps = kernel.shape
    return numpy_windowed(
        x, lambda j, k: kernel, lambda j, k: bias, stride, padding, dilation, kh, kw, maps
    )


def numpy_local(x, kernel, bias, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1)):
    _, _, kh, kw, _, maps = kernel.shape
    return numpy_windowed(
        x, lambda j, k: kernel[j, k], lambda j, k: bias[j, k], stride, padding, dilation, kh, kw,
        maps,
    )


def numpy_pool(x, kind, window, stride, padding=((0, 0), (0, 0))):
    """Pooling over the real (unpadded) positions of each window only."""
    batch, height, width, maps = x.shape
    (top, bottom), (left, right) = padding
    out_h = out_size(height, window[0], stride[0], top, bottom, 1)
    out_w = out_size(width, window[1], stride[1], left, right, 1)
    y = np.zeros((batch, out_h, out_w, maps), np.float64)
    for n in range(batch):
        for j in range(out_h):
            for k in range(out_w):
                for f in range(maps):
                    values = [
                        x[n, r, c, f]
                        for r in range(j * stride[0] - top, j * stride[0] - top + window[0])
                        for c in range(k * stride[1] - left, k * stride[1] - left + window[1])
                        if 0 <= r < height and 0 <= c < width
                    ]
                    if kind == "max":
                        y[n, j, k, f] = max(values)
                    elif kind == "avg":
                        y[n, j, k, f] = sum(values) / len(values)
                    else:
                        y[n, j, k, f] = math.sqrt(sum(v * v for v in values))
    return y


def apply_layer(layer, x, seed=0):
    """Plan one layer, fill parameters of the shapes `init` gives with random numbers, apply it."""
    plan = layer.plan("layer1", x.shape[1:])
    shapes = jax.eval_shape(lambda: layer.init(jax.random.key(0), plan, "lecun_normal", 1))
    params = {
        name: jnp.asarray(random_array(seed + i, spec.shape))
        for i, (name, spec) in enumerate(sorted(shapes.items()))
    }
    return params, jax.jit(lambda p, x: layer.apply(p, x, plan))(params, x)


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "expected"), [("max", COURSE_MAX), ("avg", COURSE_AVG)])
def test_pool2d_reproduces_course_example(kind, expected):
    y = pool2d(as_batch(COURSE_MAP), kind, (2, 2), (2, 2))
    np.testing.assert_allclose(y[0, :, :, 0], expected, rtol=1e-6)


@pytest.mark.parametrize(("kind", "expected"), [("max", COURSE_MAX), ("avg", COURSE_AVG)])
def test_pool_layer_in_network_reproduces_course_example(kind, expected):
    net = Network.from_layers([Pool(kind, 2)])
    assert net.output_shape((4, 4, 1)) == (2, 2, 1)
    y = net.apply(net.init(jax.random.key(0), (4, 4, 1)), as_batch(COURSE_MAP))
    np.testing.assert_allclose(y[0, :, :, 0], expected, rtol=1e-6)


def test_l2_pool_hand_example():
    # windows: √(9+16)=5, √(1+4+4)=3, √(36+64)=10, √(1+1+1+1)=2
    feature_map = [[3, 4, 1, 2], [0, 0, 2, 0], [6, 0, 1, 1], [0, 8, 1, 1]]
    y = pool2d(as_batch(feature_map), "l2", (2, 2), (2, 2))
    np.testing.assert_allclose(y[0, :, :, 0], [[5, 3], [10, 2]], rtol=1e-6)


def test_pooling_acts_on_each_map_separately():
    maps = np.stack([np.asarray(COURSE_MAP), -np.asarray(COURSE_MAP)], axis=-1)[None]
    y = pool2d(jnp.asarray(maps, jnp.float32), "max", (2, 2), (2, 2))
    np.testing.assert_allclose(y[0, :, :, 0], COURSE_MAX)
    np.testing.assert_allclose(y[0, :, :, 1], [[0, 0], [-1, 0]])  # minima, negated


def test_padded_positions_never_win_a_max():
    x = -1.0 - jnp.arange(16, dtype=jnp.float32).reshape(1, 4, 4, 1)  # all < 0, padding is 0
    y = pool2d(x, "max", (3, 3), (1, 1), ((1, 1), (1, 1)))
    assert y.shape == (1, 4, 4, 1)
    assert float(jnp.max(y)) == -1.0
    np.testing.assert_allclose(y, numpy_pool(np.asarray(x), "max", (3, 3), (1, 1), ((1, 1),) * 2))


def test_average_pool_excludes_padded_positions():
    y = pool2d(jnp.ones((1, 4, 4, 1)), "avg", (3, 3), (1, 1), ((1, 1), (1, 1)))
    np.testing.assert_allclose(y, np.ones((1, 4, 4, 1)), rtol=1e-6)  # not 4/9 in the corners


def test_pool_layer_none_passes_maps_through():
    x = jnp.asarray(random_array(0, (2, 5, 7, 3)))
    plan = Pool("none", 2).plan("pool1", (5, 7, 3))
    assert plan.output_shape == (5, 7, 3)
    assert plan.params == 0
    np.testing.assert_array_equal(Pool("none", 2).apply({}, x, plan), x)
    np.testing.assert_array_equal(pool2d(x, "none", (2, 2), (2, 2)), x)


def test_pool2d_refuses_unknown_type():
    with pytest.raises(ValueError, match="unknown pool type 'median'"):
        pool2d(jnp.ones((1, 4, 4, 1)), "median", (2, 2), (2, 2))


POOL_CASES = [
    # kind, window, stride, padding
    ("max", (2, 2), (2, 2), ((0, 0), (0, 0))),
    ("avg", (3, 3), (2, 2), ((1, 1), (1, 1))),
    ("l2", (3, 2), (1, 2), ((0, 2), (1, 0))),
    ("max", (3, 3), (2, 1), ((2, 1), (0, 1))),
    ("avg", (2, 3), (1, 1), ((1, 0), (0, 2))),
    ("l2", (2, 2), (1, 1), ((1, 1), (1, 1))),
]


@pytest.mark.parametrize(("kind", "window", "stride", "padding"), POOL_CASES)
def test_pool2d_matches_numpy_loop(kind, window, stride, padding):
    x = random_array(3, (2, 7, 6, 3))
    y = pool2d(jnp.asarray(x), kind, window, stride, padding)
    np.testing.assert_allclose(y, numpy_pool(x, kind, window, stride, padding), atol=1e-5)


def test_pool_layer_with_explicit_stride_and_padding_matches_numpy_loop():
    x = random_array(4, (1, 9, 9, 2))
    layer = Pool("max", window=3, stride=2, padding=1)
    plan = layer.plan("pool1", (9, 9, 2))
    assert plan.output_shape == (5, 5, 2)  # floor((9 + 2 − 2 − 1)/2) + 1 = 5
    y = layer.apply({}, jnp.asarray(x), plan)
    np.testing.assert_allclose(y, numpy_pool(x, "max", (3, 3), (2, 2), ((1, 1), (1, 1))))


# ---------------------------------------------------------------------------------------------
# Convolution (shared weights) and the locally connected layer (unshared)
# ---------------------------------------------------------------------------------------------

WINDOW_CASES = [
    # in_channels, maps, (H, W), kernel, stride, padding, dilation
    (1, 1, (6, 6), (3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1)),
    (1, 3, (7, 6), (3, 2), (1, 1), ((0, 0), (0, 0)), (1, 1)),
    (3, 2, (7, 7), (3, 3), (2, 2), ((0, 0), (0, 0)), (1, 1)),
    (3, 2, (6, 5), (3, 3), (1, 2), ((1, 1), (2, 0)), (1, 1)),
    (1, 2, (8, 7), (2, 3), (1, 1), ((0, 0), (0, 0)), (2, 2)),
    (3, 4, (7, 8), (3, 2), (2, 1), ((1, 2), (0, 1)), (2, 1)),
]
WINDOW_IDS = [f"cin{c[0]}-maps{c[1]}-s{c[4]}-p{c[5]}-d{c[6]}" for c in WINDOW_CASES]


@pytest.mark.parametrize(
    ("cin", "maps", "size", "kernel", "stride", "padding", "dilation"), WINDOW_CASES, ids=WINDOW_IDS
)
def test_conv2d_matches_numpy_loop(cin, maps, size, kernel, stride, padding, dilation):
    x = random_array(0, (2, *size, cin))
    w = random_array(1, (*kernel, cin, maps))
    b = random_array(2, (maps,))
    y = conv2d(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b), stride=stride, padding=padding,
               dilation=dilation)
    np.testing.assert_allclose(y, numpy_conv(x, w, b, stride, padding, dilation), atol=1e-5)


@pytest.mark.parametrize(
    ("cin", "maps", "size", "kernel", "stride", "padding", "dilation"), WINDOW_CASES, ids=WINDOW_IDS
)
def test_conv_layer_with_sigmoid_matches_numpy_loop(
    cin, maps, size, kernel, stride, padding, dilation
):
    x = random_array(0, (2, *size, cin))
    layer = Conv(maps, kernel, stride, padding, dilation, activation="sigmoid")
    params, y = apply_layer(layer, jnp.asarray(x))
    assert params["kernel"].shape == (*kernel, cin, maps)
    assert params["bias"].shape == (maps,)
    expected = sigmoid(numpy_conv(
        x, np.asarray(params["kernel"]), np.asarray(params["bias"]), stride, padding, dilation
    ))
    np.testing.assert_allclose(y, expected, atol=1e-5)


@pytest.mark.parametrize(
    ("cin", "maps", "size", "kernel", "stride", "padding", "dilation"), WINDOW_CASES, ids=WINDOW_IDS
)
def test_local2d_matches_numpy_loop(cin, maps, size, kernel, stride, padding, dilation):
    out_h = out_size(size[0], kernel[0], stride[0], *padding[0], dilation[0])
    out_w = out_size(size[1], kernel[1], stride[1], *padding[1], dilation[1])
    x = random_array(0, (2, *size, cin))
    w = random_array(1, (out_h, out_w, *kernel, cin, maps))
    b = random_array(2, (out_h, out_w, maps))
    y = local2d(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b), stride=stride, padding=padding,
                dilation=dilation)
    np.testing.assert_allclose(y, numpy_local(x, w, b, stride, padding, dilation), atol=1e-5)


@pytest.mark.parametrize(
    ("cin", "maps", "size", "kernel", "stride", "padding", "dilation"), WINDOW_CASES, ids=WINDOW_IDS
)
def test_local_layer_with_tanh_has_one_kernel_and_bias_per_position(
    cin, maps, size, kernel, stride, padding, dilation
):
    out_h = out_size(size[0], kernel[0], stride[0], *padding[0], dilation[0])
    out_w = out_size(size[1], kernel[1], stride[1], *padding[1], dilation[1])
    x = random_array(0, (2, *size, cin))
    layer = LocallyConnected(maps, kernel, stride, padding, dilation, activation="tanh")
    params, y = apply_layer(layer, jnp.asarray(x))
    assert params["kernel"].shape == (out_h, out_w, *kernel, cin, maps)
    assert params["bias"].shape == (out_h, out_w, maps)
    expected = np.tanh(numpy_local(
        x, np.asarray(params["kernel"]), np.asarray(params["bias"]), stride, padding, dilation
    ))
    np.testing.assert_allclose(y, expected, atol=1e-5)


def test_local_kernels_are_not_shared():
    """Changing the kernel of output position (1, 2) changes that output neuron only."""
    x = jnp.asarray(random_array(0, (1, 6, 6, 2)))
    w = random_array(1, (4, 4, 3, 3, 2, 1))
    b = np.zeros((4, 4, 1), np.float32)
    before = local2d(x, jnp.asarray(w), jnp.asarray(b))
    w[1, 2] += 1.0
    after = local2d(x, jnp.asarray(w), jnp.asarray(b))
    changed = np.argwhere(np.abs(np.asarray(after - before)) > 1e-6)
    np.testing.assert_array_equal(changed, [[0, 1, 2, 0]])


def test_conv_layer_applies_relu_by_default():
    x = jnp.asarray(random_array(0, (1, 5, 5, 1)))
    params, y = apply_layer(Conv(2, 3), x)
    z = numpy_conv(np.asarray(x), np.asarray(params["kernel"]), np.asarray(params["bias"]))
    np.testing.assert_allclose(y, np.maximum(z, 0.0), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Dense
# ---------------------------------------------------------------------------------------------


def test_dense_flattens_images_row_major_and_matches_numpy():
    x = random_array(0, (2, 3, 4, 2))
    w = random_array(1, (24, 5))
    b = random_array(2, (5,))
    expected = np.zeros((2, 5))
    for n in range(2):
        flat = [x[n, i, j, c] for i in range(3) for j in range(4) for c in range(2)]
        for u in range(5):
            expected[n, u] = b[u] + sum(flat[i] * w[i, u] for i in range(24))
    y = dense(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b))
    np.testing.assert_allclose(y, expected, atol=1e-5)


def test_dense_layer_with_identity_activation_gives_logits():
    x = jnp.asarray(random_array(0, (3, 4)))
    params, y = apply_layer(Dense(2, "identity"), x)
    expected = np.asarray(x) @ np.asarray(params["kernel"]) + np.asarray(params["bias"])
    np.testing.assert_allclose(y, expected, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.2, 0.5, 0.8])
def test_dropout_keeps_about_one_minus_rate_and_rescales(rate):
    x = jnp.ones((64, 64))
    y = np.asarray(dropout(x, rate, jax.random.key(0)))
    kept = y != 0
    assert abs(kept.mean() - (1 - rate)) < 0.03  # 4,096 draws: σ ≤ 0.008
    np.testing.assert_allclose(y[kept], 1 / (1 - rate), rtol=1e-6)


def test_dropout_same_key_same_mask_other_key_other_mask():
    x = jnp.ones((64, 64))
    first = dropout(x, 0.5, jax.random.key(1))
    np.testing.assert_array_equal(first, dropout(x, 0.5, jax.random.key(1)))
    assert not np.array_equal(first, dropout(x, 0.5, jax.random.key(2)))


def test_dropout_with_one_key_per_example_masks_each_example_by_its_key():
    from cnn_jax.layers.dropout import example_keys

    x = jnp.ones((6, 4, 4, 3))
    keys = example_keys(jax.random.key(7), 6)
    whole = np.asarray(dropout(x, 0.5, keys))
    for b in range(6):  # example b alone, or inside any slice, gets the same mask
        np.testing.assert_array_equal(whole[b:b + 1], dropout(x[b:b + 1], 0.5, keys[b:b + 1]))
        np.testing.assert_array_equal(
            whole[b], dropout(x[b], 0.5, jax.random.fold_in(jax.random.key(7), b)))
    assert not np.array_equal(whole[0], whole[1])
    with pytest.raises(ValueError, match="5 keys for a batch of 6"):
        dropout(x, 0.5, keys[:5])


def test_dropout_layer_is_identity_in_evaluation_and_with_rate_zero():
    x = jnp.asarray(random_array(0, (4, 10)))
    plan = Dropout(0.5).plan("dropout1", (10,))
    assert plan.output_shape == (10,)
    np.testing.assert_array_equal(Dropout(0.5).apply({}, x, plan, train=False), x)
    zero = Dropout(0.0)
    out = zero.apply({}, x, zero.plan("dropout1", (10,)), train=True, key=jax.random.key(0))
    np.testing.assert_array_equal(out, x)


def test_dropout_layer_in_training_needs_a_key():
    layer = Dropout(0.5)
    plan = layer.plan("dropout1", (10,))
    with pytest.raises(ValueError, match="dropout1.*PRNG key"):
        layer.apply({}, jnp.ones((2, 10)), plan, train=True)


def test_dropout_layer_in_training_drops_with_key():
    layer = Dropout(0.25)
    x = jnp.ones((64, 64))
    y = np.asarray(layer.apply({}, x, layer.plan("d", (64,)), train=True, key=jax.random.key(3)))
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.75], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Gradients against finite differences (float64)
# ---------------------------------------------------------------------------------------------


def check(f, *args):
    """Reverse-mode gradients of f at args against central finite differences, in float64."""
    with jax.enable_x64(True):
        args64 = tuple(jnp.asarray(np.asarray(a, np.float64)) for a in args)
        check_grads(f, args64, order=1, modes=["rev"], eps=1e-4, atol=1e-5, rtol=1e-5)


def test_conv2d_gradient_matches_finite_differences():
    f = functools.partial(conv2d, stride=(2, 1), padding=((1, 0), (1, 1)), dilation=(1, 2))
    check(f, random_array(0, (2, 5, 6, 2)), random_array(1, (3, 2, 2, 3)), random_array(2, (3,)))


def test_local2d_gradient_matches_finite_differences():
    # 5×6 input, kernel 3×2, stride 1×2, padding (1,0)×(0,1), dilation 1 → 4×3 positions
    f = functools.partial(local2d, stride=(1, 2), padding=((1, 0), (0, 1)))
    check(f, random_array(0, (2, 5, 6, 2)), random_array(1, (4, 3, 3, 2, 2, 2)),
          random_array(2, (4, 3, 2)))


@pytest.mark.parametrize("kind", ["max", "avg", "l2"])
@pytest.mark.parametrize("padding", [((0, 0), (0, 0)), ((1, 0), (1, 1))], ids=["valid", "padded"])
def test_pool2d_gradient_matches_finite_differences(kind, padding):
    # distinct values far from each other (no ties for max) and away from 0 (√ for l2)
    values = np.random.default_rng(0).permutation(36).reshape(1, 6, 6, 1) / 6.0 + 0.5
    check(lambda x: pool2d(x, kind, (2, 2), (2, 2), padding), values)


def test_dense_gradient_matches_finite_differences():
    check(dense, random_array(0, (3, 2, 2, 2)), random_array(1, (8, 4)), random_array(2, (4,)))


# ---------------------------------------------------------------------------------------------
# jit and grad
# ---------------------------------------------------------------------------------------------


def test_conv2d_and_local2d_work_under_jit_and_grad():
    x = jnp.asarray(random_array(0, (2, 6, 6, 1)))
    w, b = jnp.asarray(random_array(1, (3, 3, 1, 2))), jnp.zeros((2,))
    jitted = jax.jit(conv2d, static_argnames=("stride", "padding", "dilation"))
    np.testing.assert_allclose(jitted(x, w, b, stride=(2, 2)), conv2d(x, w, b, stride=(2, 2)),
                               atol=1e-6)
    grad_w = jax.jit(jax.grad(lambda w: jnp.sum(conv2d(x, w, b) ** 2)))(w)
    assert grad_w.shape == w.shape and bool(jnp.all(jnp.isfinite(grad_w)))

    lw, lb = jnp.asarray(random_array(2, (4, 4, 3, 3, 1, 2))), jnp.zeros((4, 4, 2))
    np.testing.assert_allclose(jax.jit(local2d)(x, lw, lb), local2d(x, lw, lb), atol=1e-6)
    grad_lw = jax.jit(jax.grad(lambda w: jnp.sum(local2d(x, w, lb) ** 2)))(lw)
    assert grad_lw.shape == lw.shape and bool(jnp.all(jnp.isfinite(grad_lw)))


@pytest.mark.parametrize("kind", ["max", "avg", "l2"])
def test_pool2d_works_under_jit_and_grad(kind):
    x = as_batch(COURSE_MAP) + 1.0
    jitted = jax.jit(pool2d, static_argnums=(1, 2, 3, 4))
    args = (kind, (2, 2), (2, 2), ((1, 1), (1, 1)))
    np.testing.assert_allclose(jitted(x, *args), pool2d(x, *args), rtol=1e-6)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(pool2d(x, *args))))(x)
    assert grad.shape == x.shape and bool(jnp.all(jnp.isfinite(grad)))


def test_max_pool_gradient_flows_only_to_the_winners():
    grad = jax.grad(lambda x: jnp.sum(pool2d(x, "max", (2, 2), (2, 2))))(as_batch(COURSE_MAP))
    winners = np.zeros((4, 4))
    winners[1, 0] = winners[0, 2] = winners[3, 0] = winners[2, 2] = 1.0  # the 4, 2, 3 and 3
    np.testing.assert_array_equal(grad[0, :, :, 0], winners)


def test_dense_and_dropout_work_under_jit_and_grad():
    x, w, b = jnp.ones((2, 3)), jnp.ones((3, 4)), jnp.zeros((4,))
    np.testing.assert_allclose(jax.jit(dense)(x, w, b), np.full((2, 4), 3.0))
    grad_w = jax.grad(lambda w: jnp.sum(dense(x, w, b)))(w)
    np.testing.assert_allclose(grad_w, np.full((3, 4), 2.0))  # Σ_n x_n,i

    key = jax.random.key(0)
    y = jax.jit(dropout)(jnp.ones((8, 8)), 0.5, key)
    np.testing.assert_array_equal(y, dropout(jnp.ones((8, 8)), 0.5, key))
    grad_x = jax.grad(lambda x: jnp.sum(dropout(x, 0.5, key)))(jnp.ones((8, 8)))
    np.testing.assert_allclose(grad_x, np.asarray(y))  # ∂/∂x of mask·x/keep is mask/keep
