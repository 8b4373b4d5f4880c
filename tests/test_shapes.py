"""The size formula out = floor((in + 2·pad − dilation·(k − 1) − 1)/stride) + 1 and its errors.

Each layer's planned output size is checked against the formula written out here and against
`jax.eval_shape` of the real layer (and of `jax.lax` with the caller's own padding spec); every
impossible configuration must be refused with a `ShapeError` naming the layer and the numbers,
before anything is traced or compiled.
"""

from __future__ import annotations

import itertools
import math
import re

import jax
import jax.numpy as jnp
import pytest

from cnn_jax import Conv, Dense, Dropout, LayerError, LocallyConnected, Network, Pool, ShapeError
from cnn_jax.shapes import window_geometry

# ints, the two modes, one symmetric padding per axis (height 1, width 2), asymmetric pairs
PADDINGS = [0, 1, 2, "VALID", "SAME", (1, 2), ((1, 0), (0, 2))]


def expected_size(size: int, kernel: int, stride: int, padding, dilation: int, axis: int) -> int:
    """The output size by the formula (by ceil(in/stride) for 'SAME'), written out by hand."""
    if padding == "SAME":
        return math.ceil(size / stride)
    if padding == "VALID":
        lo = hi = 0
    elif isinstance(padding, int):
        lo = hi = padding
    elif isinstance(padding[axis], int):
        lo = hi = padding[axis]
    else:
        lo, hi = padding[axis]
    return math.floor((size + lo + hi - dilation * (kernel - 1) - 1) / stride) + 1


def window_all_padding(size: int, kernel: int, stride: int, padding, axis: int) -> bool:
    """Whether the first or the last window of a pool lies entirely in the padding."""
    if padding in ("SAME", "VALID"):
        return False  # SAME pads at most window − 1 on each side
    lo = padding if isinstance(padding, int) else padding[axis]
    lo = lo if isinstance(lo, int) else lo[0]
    out = expected_size(size, kernel, stride, padding, 1, axis)
    return lo >= kernel or (out - 1) * stride >= lo + size


def lax_padding(padding):
    """The caller's padding as jax.lax takes it (strings unchanged, ints as pairs)."""
    if isinstance(padding, str):
        return padding
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    return tuple((p, p) if isinstance(p, int) else p for p in padding)


def traced_output_shape(layer, input_shape):
    """Per-example output shape of the real layer, by `jax.eval_shape` (nothing is compiled)."""
    plan = layer.plan("layer1", input_shape)
    params = jax.eval_shape(lambda: layer.init(jax.random.key(0), plan, "lecun_normal", 1))
    images = jax.ShapeDtypeStruct((2, *input_shape), jnp.float32)
    return plan, jax.eval_shape(lambda p, x: layer.apply(p, x, plan), params, images).shape[1:]


FORMULA = re.compile(
    r"floor\(\((?P<size>\d+) \+ (?:2·(?P<pad>\d+)|(?P<lo>\d+)\+(?P<hi>\d+)) − (?P<dil>\d+)·"
    r"\((?P<k>\d+)−1\) − 1\)/(?P<stride>\d+)\) \+ 1 = (?P<out>-?\d+)"
)


def evaluate_formula(text: str) -> tuple[int, int]:
    """(left-hand side evaluated, right-hand side) of a formula string such as the table's."""
    match = FORMULA.fullmatch(text)
    assert match, f"not a size formula: {text!r}"
    g = {name: int(value) for name, value in match.groupdict().items() if value is not None}
    pads = 2 * g["pad"] if "pad" in g else g["lo"] + g["hi"]
    lhs = math.floor((g["size"] + pads - g["dil"] * (g["k"] - 1) - 1) / g["stride"]) + 1
    return lhs, g["out"]


# ---------------------------------------------------------------------------------------------
# The course's numbers and the formula string
# ---------------------------------------------------------------------------------------------


def test_course_28_input_5x5_field_stride_1_gives_24():
    rows, cols = window_geometry("conv1", "conv", (28, 28), 5, 1, 0)
    assert (rows.size_out, cols.size_out) == (24, 24)
    assert rows.formula() == "floor((28 + 2·0 − 1·(5−1) − 1)/1) + 1 = 24"


def test_course_three_maps_then_2x2_pooling():
    net = Network.from_layers([Conv(3, 5), Pool("max", 2)])
    conv, pool = net.plan((28, 28, 1))
    assert conv.output_shape == (24, 24, 3)
    assert pool.output_shape == (12, 12, 3)
    assert pool.geometry[0].formula() == "floor((24 + 2·0 − 1·(2−1) − 1)/2) + 1 = 12"


@pytest.mark.parametrize(
    ("spatial", "kernel", "stride", "padding", "dilation", "expected"),
    [
        ((28, 28), 5, 1, 2, 1, "floor((28 + 2·2 − 1·(5−1) − 1)/1) + 1 = 28"),
        ((28, 28), 3, 2, ((1, 2), (0, 0)), 1, "floor((28 + 1+2 − 1·(3−1) − 1)/2) + 1 = 15"),
        ((9, 9), 3, 1, 0, 3, "floor((9 + 2·0 − 3·(3−1) − 1)/1) + 1 = 3"),
        ((10, 10), 3, 3, "SAME", 1, "floor((10 + 2·1 − 1·(3−1) − 1)/3) + 1 = 4"),
        ((10, 10), 4, 1, "SAME", 1, "floor((10 + 1+2 − 1·(4−1) − 1)/1) + 1 = 10"),
    ],
)
def test_formula_string_shows_the_numbers(spatial, kernel, stride, padding, dilation, expected):
    rows, _ = window_geometry("conv1", "conv", spatial, kernel, stride, padding, dilation)
    assert rows.formula() == expected


def test_formula_strings_are_true_equations():
    for size, k, s, p, d in itertools.product([5, 12], [1, 3, 4], [1, 2, 3], [0, 1], [1, 2]):
        try:
            rows, _ = window_geometry("c", "conv", (size, size), k, s, p, d)
        except ShapeError:
            continue
        lhs, rhs = evaluate_formula(rows.formula())
        assert lhs == rhs == expected_size(size, k, s, p, d, 0)


def test_rectangular_kernels_strides_and_dilations_act_per_axis():
    rows, cols = window_geometry("c", "conv", (20, 30), (3, 5), (1, 2), (0, 1), (2, 1))
    assert (rows.size_out, cols.size_out) == (16, 14)  # (20−4−1)/1+1, ⌊(30+2−4−1)/2⌋+1
    assert (rows.pad_lo, rows.pad_hi, cols.pad_lo, cols.pad_hi) == (0, 0, 1, 1)


# ---------------------------------------------------------------------------------------------
# The formula against the traced shapes of the real layers, over a grid
# ---------------------------------------------------------------------------------------------

SIZES, KERNELS, STRIDES, DILATIONS = [7, 12], [1, 3, 5], [1, 2, 3], [1, 2]


@pytest.mark.parametrize("layer_type", [Conv, LocallyConnected])
def test_conv_and_local_sizes_match_formula_and_eval_shape(layer_type):
    checked = refused = 0
    for size, k, s, p, d in itertools.product(SIZES, KERNELS, STRIDES, PADDINGS, DILATIONS):
        expected = tuple(expected_size(size, k, s, p, d, axis) for axis in (0, 1))
        layer = layer_type(2, k, s, p, d)
        case = f"in={size} k={k} s={s} pad={p} d={d}"
        if min(expected) < 1:
            with pytest.raises(ShapeError, match="layer1"):
                layer.plan("layer1", (size, size, 1))
            refused += 1
            continue
        plan, traced = traced_output_shape(layer, (size, size, 1))
        assert plan.output_shape == (*expected, 2), case
        assert traced == (*expected, 2), case
        checked += 1
    assert checked > 100 and refused > 5  # the grid covers both kinds of cases


def test_conv_sizes_match_lax_with_the_callers_own_padding():
    """jax.lax resolves 'SAME' and explicit pairs itself: an independent check of ours."""
    for size, k, s, p, d in itertools.product(SIZES, KERNELS, STRIDES, PADDINGS, DILATIONS):
        if min(expected_size(size, k, s, p, d, axis) for axis in (0, 1)) < 1:
            continue
        reference = jax.eval_shape(
            lambda x, w, s=s, p=p, d=d: jax.lax.conv_general_dilated(
                x, w, (s, s), lax_padding(p), rhs_dilation=(d, d),
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
            ),
            jax.ShapeDtypeStruct((1, size, size, 1), jnp.float32),
            jax.ShapeDtypeStruct((k, k, 1, 2), jnp.float32),
        )
        assert Conv(2, k, s, p, d).plan("c", (size, size, 1)).output_shape == reference.shape[1:]


def test_pool_sizes_match_formula_and_eval_shape():
    checked = refused = 0
    for size, k, s, p in itertools.product(SIZES, [2, 3, 5], STRIDES, PADDINGS):
        expected = tuple(expected_size(size, k, s, p, 1, axis) for axis in (0, 1))
        for kind in ("max", "avg", "l2"):
            layer = Pool(kind, k, s, p)
            if min(expected) < 1 or any(window_all_padding(size, k, s, p, a) for a in (0, 1)):
                with pytest.raises(ShapeError, match="layer1"):
                    layer.plan("layer1", (size, size, 3))
                refused += 1
                continue
            plan, traced = traced_output_shape(layer, (size, size, 3))
            assert plan.output_shape == traced == (*expected, 3), (kind, size, k, s, p)
            checked += 1
    assert checked > 100


def test_pool_stride_defaults_to_window():
    assert Pool("max", 3).plan("p", (10, 10, 1)).output_shape == (3, 3, 1)
    assert Pool("max", (2, 5)).plan("p", (10, 10, 1)).output_shape == (5, 2, 1)


# ---------------------------------------------------------------------------------------------
# Every bad configuration: a ShapeError (impossible geometry) or a LayerError (a value a layer
# cannot take), both ValueErrors, naming the layer and the numbers
# ---------------------------------------------------------------------------------------------

BAD_CONFIGS = [
    pytest.param(
        [Conv(20, 5), Pool("max", 2), Conv(40, 13)], (28, 28, 1),
        [r"'conv2'", r"kernel 13", r"padded input 12",
         r"floor\(\(12 \+ 2·0 − 1·\(13−1\) − 1\)/1\) \+ 1 = 0"],
        id="kernel-larger-than-input",
    ),
    pytest.param([Conv(4, 5, padding=1)], (2, 2, 1),
                 [r"'conv1'", r"padded input 4", r"= 0"], id="kernel-larger-than-padded-input"),
    pytest.param([Conv(4, 3, stride=0)], (28, 28, 1), [r"'conv1'", r"stride must be >= 1, got 0"],
                 id="stride-0"),
    pytest.param([Conv(4, 3, dilation=0)], (28, 28, 1),
                 [r"'conv1'", r"dilation must be >= 1, got 0"], id="dilation-0"),
    pytest.param([Conv(4, 0)], (28, 28, 1), [r"'conv1'", r"kernel size must be >= 1, got 0"],
                 id="kernel-0"),
    pytest.param([Conv(4, 3, padding=-1)], (28, 28, 1),
                 [r"'conv1'", r"padding must be >= 0, got \(-1, -1\)"], id="negative-padding"),
    pytest.param([Conv(4, 3, padding=((0, -2), (0, 0)))], (28, 28, 1),
                 [r"'conv1'", r"padding must be >= 0, got \(0, -2\) along height"],
                 id="negative-asymmetric-padding"),
    pytest.param([Conv(4, 3, padding="FULL")], (28, 28, 1), [r"'conv1'", r"'FULL'"],
                 id="unknown-padding-mode"),
    pytest.param([Conv(4, True)], (28, 28, 1), [r"'conv1'", r"kernel must be an int"],
                 id="bool-kernel"),
    pytest.param([Conv(0, 3)], (28, 28, 1), [r"'conv1'", r"features.*got 0"], id="zero-maps"),
    pytest.param([Conv(20, 5), Pool("max", 30)], (28, 28, 1),
                 [r"'pool1'", r"window 30", r"padded input 24"], id="pool-window-too-large"),
    pytest.param([Pool("avg", 2, stride=0)], (28, 28, 1), [r"'pool1'", r"stride must be >= 1"],
                 id="pool-stride-0"),
    pytest.param([Conv(2, 3, stride=2), Conv(2, 3, stride=2), Conv(2, 2)], (7, 7, 1),
                 [r"'conv3'", r"padded input 1", r"\+ 1 = 0"], id="output-size-0"),
    pytest.param([LocallyConnected(2, 9)], (8, 8, 1), [r"'local1'", r"kernel 9", r"input 8"],
                 id="local-kernel-too-large"),
    pytest.param([Dense(10), Conv(4, 3)], (28, 28, 1),
                 [r"'conv1'", r"cannot follow a dense layer", r"\(10,\)"], id="conv-after-dense"),
    pytest.param([Dense(10), Pool("max", 2)], (28, 28, 1),
                 [r"'pool1'", r"cannot follow a dense layer"], id="pool-after-dense"),
    pytest.param([Conv(4, 3, activation="swish")], (28, 28, 1),
                 [r"'conv1'", r"unknown activation 'swish'"], id="unknown-activation"),
    pytest.param([Dense(10, activation="softmax")], (28, 28, 1),
                 [r"'dense1'", r"unknown activation 'softmax'"], id="unknown-dense-activation"),
    pytest.param([Pool("median", 2)], (28, 28, 1), [r"'pool1'", r"unknown pool type 'median'"],
                 id="unknown-pool-type"),
    pytest.param([Dense(0)], (28, 28, 1), [r"'dense1'", r"got 0"], id="dense-zero-units"),
    pytest.param([Dropout(1.0)], (28, 28, 1), [r"'dropout1'", r"\[0, 1\), got 1.0"],
                 id="dropout-rate-1"),
    pytest.param([Dropout(-0.1)], (28, 28, 1), [r"'dropout1'", r"got -0.1"],
                 id="dropout-rate-negative"),
    pytest.param([Conv(4, 3)], (28, 28), [r"input shape", r"\(28, 28\)"], id="input-rank-2"),
    pytest.param([Conv(4, 3)], (28, 0, 1), [r"input shape", r"\(28, 0, 1\)"], id="input-size-0"),
    pytest.param([], (28, 28, 1), [r"no layers"], id="no-layers"),
]


@pytest.mark.parametrize(("layers", "input_shape", "patterns"), BAD_CONFIGS)
def test_bad_configuration_is_refused_by_plan_with_the_numbers(layers, input_shape, patterns):
    net = Network.from_layers(layers)
    with pytest.raises(ValueError) as error:  # ShapeError is a ValueError
        net.plan(input_shape)
    for pattern in patterns:
        assert re.search(pattern, str(error.value)), (pattern, str(error.value))


@pytest.mark.parametrize(
    ("layers", "input_shape", "patterns"),
    [case for case in BAD_CONFIGS if not case.id.startswith(("input-", "no-layers"))],
)
def test_bad_configuration_is_a_shape_error_at_trace_time_under_jit(layers, input_shape, patterns):
    net = Network.from_layers(layers)
    images = jnp.zeros((1, *input_shape))
    with pytest.raises(ValueError) as error:
        jax.jit(net.apply)({}, images)
    assert type(error.value) in (ShapeError, LayerError)  # not an XLA or type error
    assert re.search(patterns[0], str(error.value))


def test_kernel_larger_than_input_is_a_shape_error_not_an_xla_error():
    net = Network.from_layers([Conv(20, 5), Pool("max", 2), Conv(40, 13)])
    with pytest.raises(ShapeError, match=r"layer 'conv2' \(conv\): kernel 13"):
        net.plan((28, 28, 1))
    with pytest.raises(ShapeError, match="conv2"):
        jax.jit(net.apply)({}, jnp.zeros((4, 28, 28, 1)))
    with pytest.raises(ShapeError, match="conv2"):
        net.init(jax.random.key(0), (28, 28, 1))


def test_error_message_formula_is_a_true_equation():
    """The numbers in a refusal are the formula's, even when it gives less than zero."""
    with pytest.raises(ShapeError) as error:
        Conv(4, 20).plan("conv1", (12, 12, 1))
    formula = re.search(r"out = (floor.*= -?\d+),", str(error.value)).group(1)
    lhs, rhs = evaluate_formula(formula)
    assert lhs == rhs == -7  # floor((12 − 19 − 1)/1) + 1
