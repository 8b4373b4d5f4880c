"""Numerics of every conv, local and pool formulation against NumPy loops in float64.

A property-based test (Hypothesis, derandomized) draws layer geometries — asymmetric paddings and
paddings that reach the dilated kernel span included — and a dtype, and checks forward values and
the gradients of sum(y·r) for a random cotangent r (input and kernel) against direct sums over
output positions and kernel offsets. Regression tests pin the faults found against PyTorch: the
XLA:CPU float32 gradient of a convolution with padding ≥ the kernel span, NaN gradients of L2
pooling at an all-zero window, pools with windows entirely in the padding, direct calls with
impossible geometry, forward-mode derivatives and float labels.
"""

from __future__ import annotations

import contextlib
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cnn_jax import Conv, Dense, Network, Pool, ShapeError, conv2d, local2d, pool2d
from cnn_jax.data.dataset import Dataset
from cnn_jax.errors import DataError
from cnn_jax.layers.formulations import (
    conv2d_canonical,
    conv2d_im2col,
    conv2d_offsets,
    pool2d_reshape,
)
from cnn_jax.train.state import init_params

CONVS = {"lax": conv2d, "offsets": conv2d_offsets, "im2col": conv2d_im2col,
         "canonical": conv2d_canonical}
POOLS = {"lax": pool2d, "reshape": pool2d_reshape}
TOLERANCE = {"float32": {"rtol": 2e-4, "atol": 2e-4}, "float64": {"rtol": 1e-9, "atol": 1e-9}}
SETTINGS = settings(deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


# -- independent references: literal loops in float64 -----------------------------------------
def out_size(size: int, kernel: int, stride: int, lo: int, hi: int, dilation: int = 1) -> int:
    return (size + lo + hi - dilation * (kernel - 1) - 1) // stride + 1


def windows(shape, kernel, stride, padding, dilation):
    """Yields (j, k, [(l, m, row, col)]): every output position with the kernel offsets whose
    input position (row, col) lies inside the unpadded input."""
    _, height, width, _ = shape
    (top, bottom), (left, right) = padding
    out_h = out_size(height, kernel[0], stride[0], top, bottom, dilation[0])
    out_w = out_size(width, kernel[1], stride[1], left, right, dilation[1])
    for j in range(out_h):
        for k in range(out_w):
            taps = []
            for l in range(kernel[0]):  # noqa: E741 (the course's l, m)
                for m in range(kernel[1]):
                    row = j * stride[0] + l * dilation[0] - top
                    col = k * stride[1] + m * dilation[1] - left
                    if 0 <= row < height and 0 <= col < width:
                        taps.append((l, m, row, col))
            yield j, k, taps


def reference_windowed(x, kernel_at, r, out_shape, kernel_hw, window):
    """y = Σ over offsets of a·w (per output position's kernel `kernel_at(j, k)`), and the
    gradients of sum(y·r) wrt x and each position's kernel: (y, dx, {(j, k): dw})."""
    y = np.zeros(out_shape)
    dx = np.zeros(x.shape)
    dw = {}
    for j, k, taps in windows(x.shape, kernel_hw, *window):
        w = kernel_at(j, k)
        dw[j, k] = np.zeros(w.shape)
        for l, m, row, col in taps:  # noqa: E741
            y[:, j, k, :] += x[:, row, col, :] @ w[l, m]
            dx[:, row, col, :] += r[:, j, k, :] @ w[l, m].T
            dw[j, k][l, m] += x[:, row, col, :].T @ r[:, j, k, :]
    return y, dx, dw


def reference_conv(x, w, b, r, window):
    """(y, dx, dw, db) of the shared-weight convolution, float64."""
    out = [out_size(x.shape[i + 1], w.shape[i], window[0][i], *window[1][i], window[2][i])
           for i in (0, 1)]
    y, dx, dw = reference_windowed(x, lambda j, k: w, r, (x.shape[0], *out, w.shape[-1]),
                                   w.shape[:2], window)
    return y + b, dx, sum(dw.values(), np.zeros(w.shape)), r.sum(axis=(0, 1, 2))


def reference_local(x, w, b, r, window):
    """(y, dx, dw, db) of the locally connected layer (one kernel per output position)."""
    y, dx, dw = reference_windowed(x, lambda j, k: w[j, k], r, (x.shape[0], *w.shape[:2],
                                   w.shape[-1]), w.shape[2:4], window)
    grad_w = np.zeros(w.shape)
    for (j, k), value in dw.items():
        grad_w[j, k] = value
    return y + b, dx, grad_w, r.sum(axis=0)


def reference_pool(x, kind, window, stride, padding, r):
    """(y, dx) of max / avg (over the input positions of a window) / l2 pooling, float64."""
    out = [out_size(x.shape[i + 1], window[i], stride[i], *padding[i]) for i in (0, 1)]
    y = np.zeros((x.shape[0], *out, x.shape[-1]))
    dx = np.zeros(x.shape)
    for j, k, taps in windows(x.shape, window, stride, padding, (1, 1)):
        rows = [t[2] for t in taps]
        cols = [t[3] for t in taps]
        values = x[:, rows, cols, :]  # (batch, taps, maps)
        if kind == "max":
            y[:, j, k] = values.max(axis=1)
            best = values.argmax(axis=1)
            for n in range(x.shape[0]):
                for c in range(x.shape[-1]):
                    dx[n, rows[best[n, c]], cols[best[n, c]], c] += r[n, j, k, c]
        elif kind == "avg":
            y[:, j, k] = values.mean(axis=1)
            for row, col in zip(rows, cols, strict=True):
                dx[:, row, col] += r[:, j, k] / len(taps)
        else:
            norm = np.sqrt((values ** 2).sum(axis=1))
            y[:, j, k] = norm
            scale = np.divide(r[:, j, k], norm, out=np.zeros_like(norm), where=norm > 0)
            for row, col in zip(rows, cols, strict=True):
                dx[:, row, col] += x[:, row, col] * scale
    return y, dx


def pool_is_possible(size: int, window: int, stride: int, lo: int, hi: int) -> bool:
    """≥ 1 output and no window entirely in the padding, written out independently."""
    out = out_size(size, window, stride, lo, hi)
    return out >= 1 and all(
        any(lo <= j * stride + i < lo + size for i in range(window)) for j in range(out))


# -- strategies --------------------------------------------------------------------------------
@st.composite
def conv_cases(draw):
    """A geometry (possibly impossible), a dtype and the arrays of a conv or local layer."""
    size = (draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 1, 2])))
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    # any padding up to span + 1, and often one that reaches the span (the XLA:CPU fault)
    side = [st.integers(0, s + 1) | st.sampled_from([s, s + 1]) for s in spans]
    padding = tuple((draw(side[i]), draw(side[i])) for i in (0, 1))
    channels = draw(st.sampled_from([1, 1, 2, 3]))
    maps = draw(st.integers(1, 3))
    batch = draw(st.integers(1, 2))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    seed = draw(st.integers(0, 2 ** 16))
    return size, kernel, stride, padding, dilation, channels, maps, batch, dtype, seed


@st.composite
def pool_cases(draw):
    size = (draw(st.integers(1, 8)), draw(st.integers(1, 8)))
    window = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple((draw(st.integers(0, k)), draw(st.integers(0, k))) for k in window)
    maps = draw(st.integers(1, 2))
    batch = draw(st.integers(1, 2))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    seed = draw(st.integers(0, 2 ** 16))
    return size, window, stride, padding, maps, batch, dtype, seed


def precision(dtype: str):
    """x64 switched on for a float64 case only, and restored afterwards."""
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def value_and_vjp(fn, r, *args):
    """(y, gradients of sum(y·r) wrt args) in one jitted program, as float64 NumPy arrays."""
    def run(*args):
        y, pullback = jax.vjp(fn, *args)
        return y, pullback(r)
    y, grads = jax.jit(run)(*args)
    return np.asarray(y, np.float64), [np.asarray(g, np.float64) for g in grads]


# -- the property: every formulation equals the loops -------------------------------------------
@settings(SETTINGS, max_examples=20)
@given(conv_cases())
@example(((9, 9), (2, 2), (1, 1), ((3, 0), (2, 0)), (1, 1), 2, 3, 1, "float32", 0))  # the fault
@example(((7, 6), (3, 3), (1, 1), ((4, 0), (4, 1)), (1, 1), 1, 2, 2, "float32", 1))
@example(((5, 5), (4, 4), (1, 1), ((0, 0), (0, 0)), (2, 2), 1, 2, 1, "float64", 2))  # span 7 > 5
def test_conv_formulations_and_local_match_numpy_loops(case):
    size, kernel, stride, padding, dilation, channels, maps, batch, dtype, seed = case
    rng = np.random.default_rng(seed)
    out = [out_size(size[i], kernel[i], stride[i], *padding[i], dilation[i]) for i in (0, 1)]
    window = {"stride": stride, "padding": padding, "dilation": dilation}
    x = rng.normal(size=(batch, *size, channels))
    w = rng.normal(size=(*kernel, channels, maps))
    b = rng.normal(size=(maps,))
    with precision(dtype):
        cast = functools.partial(jnp.asarray, dtype=dtype)
        if min(out) < 1:
            for fn in CONVS.values():
                with pytest.raises(ShapeError, match="padded input"):
                    fn(cast(x), cast(w), cast(b), **window)
            with pytest.raises(ShapeError, match="padded input"):
                local2d(cast(x), cast(w[None, None]), cast(b), **window)
            return
        x, w = x.astype(dtype).astype(np.float64), w.astype(dtype).astype(np.float64)
        r = rng.normal(size=(batch, *out, maps)).astype(dtype).astype(np.float64)
        expected = reference_conv(x, w, b.astype(dtype).astype(np.float64), r,
                                  (stride, padding, dilation))
        for name, fn in CONVS.items():
            y, grads = value_and_vjp(functools.partial(fn, **window), cast(r), cast(x), cast(w),
                                     cast(b))
            for what, got, want in zip(("y", "dx", "dw", "db"), (y, *grads), expected,
                                       strict=True):
                np.testing.assert_allclose(got, want, **TOLERANCE[dtype],
                                           err_msg=f"{name} {what} {case}")

        lw = rng.normal(size=(*out, *kernel, channels, maps)).astype(dtype).astype(np.float64)
        lb = rng.normal(size=(*out, maps)).astype(dtype).astype(np.float64)
        expected = reference_local(x, lw, lb, r, (stride, padding, dilation))
        y, grads = value_and_vjp(functools.partial(local2d, **window), cast(r), cast(x),
                                 cast(lw), cast(lb))
        for what, got, want in zip(("y", "dx", "dw", "db"), (y, *grads), expected, strict=True):
            np.testing.assert_allclose(got, want, **TOLERANCE[dtype], err_msg=f"local {what}")


@settings(SETTINGS, max_examples=60)
@given(pool_cases())
@example(((6, 6), (2, 2), (2, 2), ((2, 2), (0, 0)), 1, 1, "float32", 0))  # a window all padding
def test_pool_formulations_match_numpy_loops(case):
    size, window, stride, padding, maps, batch, dtype, seed = case
    rng = np.random.default_rng(seed)
    shape = (batch, *size, maps)
    # distinct values, exact in float32: no ties for a max
    x = (rng.permutation(np.prod(shape)).reshape(shape) - np.prod(shape) / 2 + 0.5) / 8
    possible = all(pool_is_possible(size[i], window[i], stride[i], *padding[i]) for i in (0, 1))
    with precision(dtype):
        for kind in ("max", "avg", "l2"):
            fns = {name: functools.partial(fn, kind=kind, window=window, stride=stride,
                                           padding=padding) for name, fn in POOLS.items()}
            if not possible:
                for fn in fns.values():
                    with pytest.raises(ShapeError, match="layer 'pool2d"):
                        fn(jnp.asarray(x, dtype))
                continue
            out = [out_size(size[i], window[i], stride[i], *padding[i]) for i in (0, 1)]
            r = rng.normal(size=(batch, *out, maps)).astype(dtype).astype(np.float64)
            expected = reference_pool(x, kind, window, stride, padding, r)
            for name, fn in fns.items():
                y, (dx,) = value_and_vjp(fn, jnp.asarray(r, dtype), jnp.asarray(x, dtype))
                for what, got, want in zip(("y", "dx"), (y, dx), expected, strict=True):
                    np.testing.assert_allclose(got, want, **TOLERANCE[dtype],
                                               err_msg=f"{name} {kind} {what} {case}")


# -- 1. the XLA:CPU float32 gradient with padding ≥ the kernel span ----------------------------
REPRODUCER_PADDING = ((3, 0), (2, 0))


@pytest.mark.parametrize("name", list(CONVS))
def test_conv_gradient_with_padding_past_the_kernel_span_is_right_in_float32(name):
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(1, 9, 9, 2)), rng.normal(size=(2, 2, 2, 3))
    r = np.ones((1, 11, 10, 3))
    _, dx, _, _ = reference_conv(x, w, np.zeros(3), r, ((1, 1), REPRODUCER_PADDING, (1, 1)))
    fn = CONVS[name]
    for _ in range(3):  # the wrong values changed from call to call
        got = jax.grad(lambda x: fn(x, jnp.asarray(w, jnp.float32), jnp.zeros(3),
                                    padding=REPRODUCER_PADDING).sum())(jnp.asarray(x, jnp.float32))
        np.testing.assert_allclose(got, dx, rtol=1e-5, atol=1e-5)


def test_offsets_gradient_with_padding_past_the_span_is_right_in_float32():
    """One input channel: the offsets sum itself, whose custom JVP goes through conv2d."""
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(2, 9, 9, 1)), rng.normal(size=(3, 2, 1, 2))
    padding = ((4, 0), (3, 0))
    r = rng.normal(size=(2, out_size(9, 3, 1, 4, 0), out_size(9, 2, 1, 3, 0), 2))
    _, dx, dw, _ = reference_conv(x, w, np.zeros(2), r, ((1, 1), padding, (1, 1)))
    _, (got_x, got_w, _) = value_and_vjp(functools.partial(conv2d_offsets, padding=padding),
                                         jnp.asarray(r, jnp.float32), jnp.asarray(x, jnp.float32),
                                         jnp.asarray(w, jnp.float32), jnp.zeros(2))
    np.testing.assert_allclose(got_x, dx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_w, dw, rtol=1e-4, atol=1e-4)


def test_local_gradient_with_padding_past_the_kernel_span_is_right_in_float32():
    rng = np.random.default_rng(2)
    x, w = rng.normal(size=(1, 9, 9, 2)), rng.normal(size=(11, 10, 2, 2, 2, 3))
    r = np.ones((1, 11, 10, 3))
    _, dx, _, _ = reference_local(x, w, np.zeros((11, 10, 3)), r,
                                  ((1, 1), REPRODUCER_PADDING, (1, 1)))
    got = jax.grad(lambda x: local2d(x, jnp.asarray(w, jnp.float32), jnp.zeros((11, 10, 3)),
                                     padding=REPRODUCER_PADDING).sum())(jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(got, dx, rtol=1e-5, atol=1e-5)


def primitives(fn, *args) -> list[str]:
    """The primitives of fn's program, those of nested jits (`jnp.pad` is one) included."""
    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            yield eqn.primitive.name
            if "jaxpr" in eqn.params:
                yield from walk(eqn.params["jaxpr"].jaxpr)
    return list(walk(jax.make_jaxpr(fn)(*args).jaxpr))


@pytest.mark.parametrize("padding", [((0, 0), (0, 0)), ((2, 2), (2, 2)), ((1, 2), (0, 1))],
                         ids=["valid", "same-5x5", "small-asymmetric"])
def test_common_paddings_keep_one_plain_convolution(padding):
    x, w = jnp.ones((1, 8, 8, 2)), jnp.ones((5, 5, 2, 3))
    ops = primitives(lambda x, w: conv2d(x, w, jnp.zeros(3), padding=padding), x, w)
    assert ops.count("conv_general_dilated") == 1 and "pad" not in ops
    ops = primitives(lambda x, w: conv2d(x, w, jnp.zeros(3), padding=((5, 0), (0, 0))), x, w)
    assert "pad" in ops  # padding 5 reaches the span 5: padded explicitly


# -- 2. L2 pooling at an all-zero window --------------------------------------------------------
@pytest.mark.parametrize("name", list(POOLS))
def test_l2_pool_gradient_at_an_all_zero_window_is_zero(name):
    grad = jax.grad(lambda x: POOLS[name](x, "l2", (2, 2), (2, 2)).sum())(jnp.zeros((1, 2, 2, 1)))
    np.testing.assert_array_equal(grad, np.zeros((1, 2, 2, 1)))
    x = jnp.asarray([[0.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 4.0]])[None, :, :, None]
    y, grad = jax.value_and_grad(lambda x: POOLS[name](x, "l2", (2, 2), (2, 2)).sum())(x)
    assert float(y) == 5.0  # windows √0 = 0 and √(9 + 16) = 5: values unchanged
    np.testing.assert_allclose(grad[0, :, :, 0], [[0, 0, 0.6, 0], [0, 0, 0, 0.8]])


def test_network_with_l2_pooling_has_finite_gradients_on_a_zero_background():
    net = Network.from_layers([Conv(2, 3, activation="identity"), Pool("l2", 2), Dense(3)])
    params = init_params(net, jax.random.key(0), (8, 8, 1))
    params["conv1"]["bias"] = jnp.zeros_like(params["conv1"]["bias"])
    image = jnp.zeros((1, 8, 8, 1)).at[0, 1:3, 1:3, 0].set(1.0)  # a blob; the rest is 0

    def loss(params):
        return jnp.sum(net.apply(params, image) ** 2)

    grads = jax.grad(loss)(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grads))
    assert float(jnp.abs(grads["conv1"]["kernel"]).sum()) > 0


# -- 3. pool windows entirely in the padding ---------------------------------------------------
def test_pool_with_padding_as_large_as_the_window_is_refused_in_the_plan():
    with pytest.raises(ShapeError) as info:
        Pool("max", 2, padding=2).plan("pool1", (6, 6, 1))
    message = str(info.value)
    for part in ("layer 'pool1' (pool)", "window 2 with padding (2, 2) along height",
                 "floor((6 + 2·2 − 1·(2−1) − 1)/2) + 1 = 5", "first window",
                 "entirely in the padding", "pad_lo ≤ window − 1 = 1"):
        assert part in message, (part, message)
    with pytest.raises(ShapeError, match="last window .* entirely in the padding"):
        Pool("avg", 3, stride=1, padding=((0, 3), (0, 0))).plan("pool2", (6, 6, 1))
    with pytest.raises(ShapeError, match="layer 'pool1'"):  # through Network.plan
        Network.from_layers([Pool("l2", 2, padding=2)]).plan((6, 6, 1))


def test_pool_padding_that_every_window_overlaps_is_accepted():
    assert Pool("max", 2, padding=1).plan("p", (6, 6, 1)).output_shape == (4, 4, 1)
    # pad_hi 2 = window, but stride 3 never reaches it: floor((5 + 2 − 2)/3) + 1 = 2
    plan = Pool("max", 2, stride=3, padding=((0, 2), (0, 0))).plan("p", (5, 5, 1))
    assert plan.output_shape == (2, 2, 1)


# -- 4. direct calls validate geometry like the layers -----------------------------------------
@pytest.mark.parametrize("name", list(CONVS))
def test_conv_functions_refuse_a_kernel_larger_than_the_input(name):
    x, w = jnp.ones((1, 5, 5, 1)), jnp.ones((6, 6, 1, 2))
    with pytest.raises(ShapeError, match=rf"layer '{CONVS[name].__name__}' \(conv\): kernel 6 "
                       r".*padded input 5 along height: out = floor\(\(5 \+ 2·0"):
        CONVS[name](x, w, jnp.zeros(2))
    with pytest.raises(ShapeError, match="kernel 6"):  # at trace time, under jit
        jax.jit(CONVS[name])(x, w, jnp.zeros(2))


@pytest.mark.parametrize("name", list(CONVS))
def test_conv_functions_refuse_in_channels_that_differ_from_x(name):
    with pytest.raises(ShapeError, match=r"in_channels = 3, but x \(1, 5, 5, 2\) has 2 channels"):
        CONVS[name](jnp.ones((1, 5, 5, 2)), jnp.ones((3, 3, 3, 4)), jnp.zeros(4))


def test_local2d_refuses_impossible_geometry_and_channels():
    with pytest.raises(ShapeError, match=r"layer 'local2d' \(local\): kernel 6"):
        local2d(jnp.ones((1, 5, 5, 1)), jnp.ones((1, 1, 6, 6, 1, 2)), jnp.zeros((1, 1, 2)))
    with pytest.raises(ShapeError, match="in_channels = 3, but x"):
        local2d(jnp.ones((1, 5, 5, 2)), jnp.ones((3, 3, 3, 3, 3, 4)), jnp.zeros((3, 3, 4)))
    with pytest.raises(ShapeError, match=r"\(out_h, out_w\) = \(4, 4\), but the output is 3×3"):
        local2d(jnp.ones((1, 5, 5, 2)), jnp.ones((4, 4, 3, 3, 2, 4)), jnp.zeros((4, 4, 4)))


@pytest.mark.parametrize("name", list(POOLS))
def test_pool_functions_refuse_impossible_geometry(name):
    fn = POOLS[name]
    with pytest.raises(ShapeError, match=rf"layer '{fn.__name__}' \(pool\): window 6"):
        fn(jnp.ones((1, 5, 5, 1)), "max", (6, 6), (6, 6))
    with pytest.raises(ShapeError, match="entirely in the padding"):
        fn(jnp.ones((1, 6, 6, 1)), "avg", (2, 2), (2, 2), ((2, 2), (2, 2)))


# -- 5. forward mode on every formulation ------------------------------------------------------
def check_forward_mode(fn, *args):
    """jvp agrees with vjp (⟨r, J·v⟩ = ⟨Jᵀ·r, v⟩) and jacfwd with jacrev, wrt every argument."""
    rng = np.random.default_rng(3)
    tangents = tuple(jnp.asarray(rng.normal(size=a.shape), jnp.float32) for a in args)
    y, y_dot = jax.jvp(fn, args, tangents)
    r = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
    pulled = jax.vjp(fn, *args)[1](r)
    forward = float(jnp.vdot(r, y_dot))
    backward = sum(float(jnp.vdot(g, t)) for g, t in zip(pulled, tangents, strict=True))
    np.testing.assert_allclose(forward, backward, rtol=1e-4)
    argnums = tuple(range(len(args)))
    for fwd, rev in zip(jax.jacfwd(fn, argnums)(*args), jax.jacrev(fn, argnums)(*args),
                        strict=True):
        np.testing.assert_allclose(fwd, rev, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(CONVS))
@pytest.mark.parametrize("channels", [1, 2])
def test_conv_formulations_support_jvp_and_jacfwd(name, channels):
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(1, 5, 4, channels)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(2, 3, channels, 2)), jnp.float32)
    fn = functools.partial(CONVS[name], stride=(2, 1), padding=((3, 0), (1, 2)), dilation=(1, 2))
    check_forward_mode(fn, x, w, jnp.ones(2))


def test_local2d_supports_jvp_and_jacfwd():
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.normal(size=(1, 4, 4, 2)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(5, 5, 2, 2, 2, 1)), jnp.float32)  # 4 + 2 − 2 + 1 = 5
    fn = functools.partial(local2d, padding=((2, 0), (0, 2)))
    check_forward_mode(fn, x, w, jnp.ones((5, 5, 1)))


@pytest.mark.parametrize("name", list(POOLS))
@pytest.mark.parametrize("kind", ["max", "avg", "l2"])
@pytest.mark.parametrize("padding", [((0, 0), (0, 0)), ((1, 0), (0, 1))], ids=["valid", "pad"])
def test_pool_formulations_support_jvp_and_jacfwd(name, kind, padding):
    x = jnp.asarray(np.random.default_rng(6).permutation(32).reshape(1, 4, 4, 2) / 4 - 3.9,
                    jnp.float32)
    check_forward_mode(lambda x: POOLS[name](x, kind, (2, 2), (2, 2), padding), x)


# -- 6. labels are integers where data enters ------------------------------------------------
def make_dataset(train_labels) -> Dataset:
    images = np.zeros((3, 2, 2, 1), np.float32)
    labels = np.array([0, 1, 2])
    return Dataset("toy", images, train_labels, images, labels, images, labels, num_classes=3)


@pytest.mark.parametrize("labels", [np.array([0.0, 1.5, 2.0]), np.array([0.0, 1.0, 2.0]),
                                    np.array([True, False, True])], ids=["1.5", "1.0", "bool"])
def test_dataset_refuses_labels_that_are_not_integers(labels):
    with pytest.raises(DataError, match=r"toy/train: labels must be integers, got dtype"):
        make_dataset(labels)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.int32])
def test_dataset_takes_integer_labels_of_any_width(dtype):
    data = make_dataset(np.array([2, 0, 1], dtype))
    assert data.train_labels.dtype == np.int32 and data.train_labels.tolist() == [2, 0, 1]
