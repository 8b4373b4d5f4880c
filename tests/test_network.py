"""Networks: readable parameters, specs as dicts, init schemes, the course's parameter counts,
the forward pass under jit/grad/dropout, and the layer order of Nielsen's conv-pool layer."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax.traverse_util import flatten_dict

from cnn_jax import (
    PRESETS,
    Conv,
    Dense,
    Dropout,
    LayerError,
    LocallyConnected,
    Network,
    Pool,
    ShapeError,
    count_params,
    cross_entropy,
    layer_from_dict,
    preset,
)
from cnn_jax.network import layer_to_dict

CP2_FC100 = [Conv(20, 5), Pool("max", 2), Conv(40, 5), Pool("max", 2), Dense(100), Dense(10)]


def images(batch: int, shape=(28, 28, 1), seed: int = 0) -> jnp.ndarray:
    return jnp.asarray(np.random.default_rng(seed).uniform(size=(batch, *shape)), jnp.float32)


def init(net: Network, shape=(28, 28, 1), seed: int = 0):
    """The network's own initialisation (compiles its random draws: used where it is tested)."""
    return net.init(jax.random.key(seed), shape)


def param_shapes(net: Network, shape=(28, 28, 1)):
    """The shapes `init` gives, traced only."""
    return jax.eval_shape(lambda: init(net, shape))


def fake_params(net: Network, shape=(28, 28, 1), seed: int = 0):
    """Parameters of the right shapes drawn by NumPy (biases nonzero), for forward-pass tests."""
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(
        lambda spec: jnp.asarray(rng.normal(scale=0.3, size=spec.shape), jnp.float32),
        param_shapes(net, shape),
    )


# ---------------------------------------------------------------------------------------------
# Names, specs as dicts, hashing
# ---------------------------------------------------------------------------------------------


def test_parameters_have_readable_names_and_shapes():
    params = param_shapes(Network.from_layers(CP2_FC100))
    shapes = {name: leaf.shape for name, leaf in flatten_dict(params, sep="/").items()}
    assert shapes == {
        "conv1/kernel": (5, 5, 1, 20), "conv1/bias": (20,),
        "conv2/kernel": (5, 5, 20, 40), "conv2/bias": (40,),
        "dense1/kernel": (40 * 4 * 4, 100), "dense1/bias": (100,),
        "dense2/kernel": (100, 10), "dense2/bias": (10,),
    }


def test_layer_names_count_per_kind():
    net = Network.from_layers(
        [LocallyConnected(2, 3), Pool(), Dropout(0.1), Conv(2, 3), Pool("avg"), Dense(5),
         Dropout(0.2), Dense(3)]
    )
    assert net.names == (
        "local1", "pool1", "dropout1", "conv1", "pool2", "dense1", "dropout2", "dense2"
    )


LAYER_DICTS = [
    {"type": "conv", "features": 20, "kernel": 5, "stride": 1, "padding": "VALID",
     "dilation": 1, "activation": "relu"},
    {"type": "conv", "features": 8, "kernel": [3, 5], "stride": [1, 2],
     "padding": [[1, 0], [2, 2]], "dilation": [2, 1], "activation": "tanh"},
    {"type": "local", "features": 4, "kernel": 3, "stride": 2, "padding": 1, "dilation": 1,
     "activation": "sigmoid"},
    {"type": "pool", "pool_type": "avg", "window": 3, "stride": 2, "padding": "SAME"},
    {"type": "pool", "pool_type": "l2", "window": [2, 3], "stride": None, "padding": "VALID"},
    {"type": "dense", "features": 100, "activation": "identity"},
    {"type": "dropout", "rate": 0.5},
]


@pytest.mark.parametrize("spec", LAYER_DICTS, ids=lambda spec: spec["type"])
def test_layer_dict_round_trip_through_json(spec):
    layer = layer_from_dict(json.loads(json.dumps(spec)))
    assert layer.kind == spec["type"]
    back = layer_to_dict(layer)
    assert json.loads(json.dumps(back)) == spec
    assert layer_from_dict(back) == layer
    hash(layer)  # lists from JSON became tuples


def test_layer_from_dict_fills_defaults():
    assert layer_from_dict({"type": "conv", "features": 20}) == Conv(20, 5, 1, "VALID", 1, "relu")
    assert layer_from_dict({"type": "pool"}) == Pool("max", 2, None, "VALID")


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ({"type": "attention", "features": 3}, r"layer 4: unknown layer type 'attention'"),
        ({"features": 3}, r"layer 4: unknown layer type None"),
        ({"type": "conv", "features": 3, "kernal": 5},
         r"layer 4 \(conv\): unknown keys \['kernal'\]; allowed: \['features', 'kernel'"),
        ({"type": "pool", "size": 2, "window": 2}, r"layer 4 \(pool\): unknown keys \['size'\]"),
        ({"type": "dense"}, r"layer 4 \(dense\):.*features"),
    ],
)
def test_layer_from_dict_refuses_bad_specs_naming_the_layer(spec, pattern):
    with pytest.raises(LayerError, match=pattern):
        layer_from_dict(spec, 4)


def test_network_from_dicts_names_the_bad_layer_by_index():
    with pytest.raises(LayerError, match=r"layer 1: unknown layer type 'pooling'"):
        Network.from_layers([{"type": "conv", "features": 2}, {"type": "pooling"}])
    net = Network.from_layers([{"type": "conv", "features": 2}, Pool(), {"type": "dense",
                                                                         "features": 3}])
    assert net.layers == (Conv(2), Pool(), Dense(3))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_and_is_hashable(name):
    net = Network.from_layers(preset(name))
    again = Network.from_layers(json.loads(json.dumps([layer_to_dict(x) for x in net.layers])))
    assert again == net
    assert hash(again) == hash(net)


def test_network_is_usable_as_a_static_jit_argument():
    traces = []

    def forward(net, params, x):
        traces.append(net)
        return net.apply(params, x)

    run = jax.jit(forward, static_argnums=0)
    net = Network.from_layers(preset("course_3maps"))
    params, x = fake_params(net), images(2)
    first = run(net, params, x)
    twin = Network.from_layers(preset("course_3maps"))  # equal and equally hashed: cache hit
    np.testing.assert_array_equal(run(twin, params, x), first)
    assert len(traces) == 1
    assert first.shape == (2, 10)


def test_preset_refuses_unknown_name():
    with pytest.raises(ValueError, match="unknown preset 'alexnet'"):
        preset("alexnet")


# ---------------------------------------------------------------------------------------------
# The course's parameter counts, by hand arithmetic
# ---------------------------------------------------------------------------------------------

CP2_BODY = 20 * (5 * 5 * 1 + 1) + 40 * (5 * 5 * 20 + 1)  # shared-weight maps: 520 + 20,040


@pytest.mark.parametrize(
    ("layers", "input_shape", "expected"),
    [
        ([Conv(1, 5)], (28, 28, 1), 5 * 5 + 1),  # one shared-weight map: 26
        ([Conv(20, 5)], (28, 28, 1), 20 * 26),  # 520
        ([Dense(30)], (28, 28, 1), 784 * 30 + 30),  # 23,550
        ([LocallyConnected(4, 5)], (12, 12, 3), (8 * 8) * (5 * 5 * 3 + 1) * 4),
        ([LocallyConnected(20, 5)], (28, 28, 1), (24 * 24) * (5 * 5 + 1) * 20),
        ([Conv(3, (3, 5), stride=(2, 1), padding=((1, 0), (2, 2)))], (9, 9, 2), 3 * (15 * 2 + 1)),
    ],
    ids=["one-map", "20-maps", "fc30", "local-4maps", "local-20maps", "rectangular"],
)
def test_layer_parameter_counts(layers, input_shape, expected):
    net = Network.from_layers(layers)
    assert sum(plan.params for plan in net.plan(input_shape)) == expected
    assert count_params(fake_params(net, input_shape)) == expected


PRESET_COUNTS = {
    "course_3maps": 3 * 26 + (12 * 12 * 3) * 10 + 10,
    "nielsen_fc100": 784 * 100 + 100 + 100 * 10 + 10,
    "nielsen_cp1_fc100": 20 * 26 + (12 * 12 * 20) * 100 + 100 + 100 * 10 + 10,
    "nielsen_cp2_fc100": CP2_BODY + (40 * 4 * 4) * 100 + 100 + 100 * 10 + 10,
    "nielsen_cp2_fc100_relu": CP2_BODY + 640 * 100 + 100 + 100 * 10 + 10,
    "nielsen_cp2_fc100x2": CP2_BODY + 640 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10,
    "nielsen_cp2_fc1000_dropout": CP2_BODY + 640 * 1000 + 1000 + 1000 * 1000 + 1000
    + 1000 * 10 + 10,
    "lenet5": 6 * (25 + 1) + 16 * (25 * 6 + 1) + 400 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10,
    # 28 → 24 → 12 → 10 → 5: 5 × 5 × 32 = 800 inputs to the dense layer
    "mnist_fast": 24 * (25 + 1) + 32 * (9 * 24 + 1) + 800 * 256 + 256 + 256 * 10 + 10,
    # the "why CNNs" ablation: 30 neurons; 20 maps of 5×5 fields unshared (24·24 positions) or
    # shared; shared then 2×2 max pooling (12·12·20 inputs to the logits)
    "why_fc": 784 * 30 + 30 + 30 * 10 + 10,
    "why_local": 24 * 24 * 26 * 20 + (24 * 24 * 20) * 10 + 10,
    "why_shared": 26 * 20 + (24 * 24 * 20) * 10 + 10,
    "why_pooled": 26 * 20 + (12 * 12 * 20) * 10 + 10,
}


def test_preset_counts_table_covers_every_preset():
    assert set(PRESET_COUNTS) == set(PRESETS)
    assert PRESET_COUNTS["nielsen_cp2_fc100"] == 85_670
    assert PRESET_COUNTS["lenet5"] == 61_706


@pytest.mark.parametrize("name", sorted(PRESET_COUNTS))
def test_preset_parameter_count(name):
    net = Network.from_layers(preset(name))
    assert sum(plan.params for plan in net.plan((28, 28, 1))) == PRESET_COUNTS[name]
    params = param_shapes(net)
    assert sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(params)) == (
        PRESET_COUNTS[name]
    )


def test_nielsen_cp2_feeds_640_inputs_to_fc100():
    plans = Network.from_layers(preset("nielsen_cp2_fc100")).plan((28, 28, 1))
    assert [p.output_shape for p in plans] == [
        (24, 24, 20), (12, 12, 20), (8, 8, 40), (4, 4, 40), (100,), (10,)
    ]
    assert plans[4].input_shape == (4, 4, 40)
    assert plans[4].params == 640 * 100 + 100


# ---------------------------------------------------------------------------------------------
# Initialisation schemes
# ---------------------------------------------------------------------------------------------


def test_nielsen_init_uses_n_out_and_standard_normal_biases():
    net = Network.from_layers([Conv(20, 5), Pool("max", 2), Dense(1000)], init_scheme="nielsen")
    params = init(net)
    # network3.py: conv-pool n_out = maps·5·5 / pool area; dense n_out = units
    conv_std = (1 / (20 * 25 / 4)) ** 0.5
    assert float(jnp.std(params["conv1"]["kernel"])) == pytest.approx(conv_std, rel=0.1)
    assert float(jnp.std(params["dense1"]["kernel"])) == pytest.approx((1 / 1000) ** 0.5, rel=0.05)
    biases = params["dense1"]["bias"]
    assert float(jnp.mean(biases)) == pytest.approx(0.0, abs=0.15)
    assert float(jnp.std(biases)) == pytest.approx(1.0, rel=0.1)


@pytest.mark.parametrize(
    ("scheme", "std"),
    [("lecun_normal", (1 / 25) ** 0.5), ("he_normal", (2 / 25) ** 0.5),
     ("glorot_uniform", (6 / (25 + 500)) ** 0.5 / 3**0.5)],
)
def test_kernel_schemes_have_the_textbook_spread_and_zero_biases(scheme, std):
    # conv1 of CP(20): fan_in = 5·5·1 = 25, fan_out = 5·5·20 = 500
    net = Network.from_layers([Conv(20, 5)], init_scheme=scheme)
    params = init(net)
    kernel = params["conv1"]["kernel"]
    assert float(jnp.std(kernel)) == pytest.approx(std, rel=0.1)
    if scheme == "glorot_uniform":
        assert float(jnp.max(jnp.abs(kernel))) <= (6 / 525) ** 0.5
    for layer in params.values():
        np.testing.assert_array_equal(layer["bias"], np.zeros_like(layer["bias"]))


def test_local_layer_fan_in_excludes_positions():
    # each unshared kernel sees 5·5·1 inputs: lecun std √(1/25), not √(1/(24·24·25))
    params = init(Network.from_layers([LocallyConnected(4, 5)]))
    assert float(jnp.std(params["local1"]["kernel"])) == pytest.approx(0.2, rel=0.05)


def test_init_is_reproducible_per_key():
    net = Network.from_layers(preset("course_3maps"))
    first, again, other = init(net, seed=1), init(net, seed=1), init(net, seed=2)
    np.testing.assert_array_equal(first["conv1"]["kernel"], again["conv1"]["kernel"])
    assert not np.array_equal(first["conv1"]["kernel"], other["conv1"]["kernel"])


def test_unknown_init_scheme_is_refused():
    with pytest.raises(LayerError, match="unknown init scheme 'xavier'"):
        Network.from_layers([Dense(3)], init_scheme="xavier").plan((4, 4, 1))


# ---------------------------------------------------------------------------------------------
# The forward pass
# ---------------------------------------------------------------------------------------------


def test_activations_returns_every_layer_with_the_planned_shapes():
    net = Network.from_layers(preset("nielsen_cp2_fc1000_dropout"))
    params, x = fake_params(net), images(3)
    outputs = jax.jit(net.activations)(params, x)
    assert sorted(outputs) == sorted(net.names)  # (jit returns dicts with sorted keys)
    assert {name: y.shape[1:] for name, y in outputs.items()} == {
        "conv1": (24, 24, 20), "pool1": (12, 12, 20), "conv2": (8, 8, 40), "pool2": (4, 4, 40),
        "dropout1": (4, 4, 40), "dense1": (1000,), "dropout2": (1000,), "dense2": (1000,),
        "dropout3": (1000,), "dense3": (10,),
    }
    assert [outputs[plan.name].shape[1:] for plan in net.plan((28, 28, 1))] == [
        plan.output_shape for plan in net.plan((28, 28, 1))
    ]
    conv1 = np.asarray(outputs["conv1"])
    pooled = conv1.reshape(3, 12, 2, 12, 2, 20).max(axis=(2, 4))  # 2×2 max pooling by hand
    np.testing.assert_allclose(outputs["pool1"], pooled)
    np.testing.assert_allclose(outputs["dense3"], jax.jit(net.apply)(params, x), atol=1e-4)


def test_nielsen_order_conv_pool_bias_sigmoid_equals_ours():
    """network3.py: σ(maxpool(conv(a, w)) + b); ours: maxpool(σ(conv(a, w) + b))."""
    net = Network.from_layers([Conv(3, 5, activation="sigmoid"), Pool("max", 2)])
    params, x = fake_params(net), images(2)
    w, b = params["conv1"]["kernel"], params["conv1"]["bias"]
    z = jax.lax.conv_general_dilated(x, w, (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    pooled = jax.lax.reduce_window(z, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    nielsen = jax.nn.sigmoid(pooled + b)
    assert float(jnp.max(jnp.abs(b))) > 0.1  # the biases matter in this comparison
    np.testing.assert_allclose(net.apply(params, x), nielsen, atol=1e-6)


def test_apply_in_training_with_dropout_needs_a_key_and_is_reproducible():
    net = Network.from_layers([Dense(50), Dropout(0.5), Dense(10, "identity")])
    params, x = fake_params(net, (4, 4, 1)), images(8, (4, 4, 1))
    with pytest.raises(ValueError, match="dropout1.*PRNG key"):
        net.apply(params, x, train=True)
    train = jax.jit(net.apply, static_argnames="train")
    a = train(params, x, train=True, key=jax.random.key(0))
    np.testing.assert_array_equal(a, train(params, x, train=True, key=jax.random.key(0)))
    assert not np.allclose(a, train(params, x, train=True, key=jax.random.key(1)))
    np.testing.assert_allclose(train(params, x, train=False), net.apply(params, x), atol=1e-6)


def test_gradient_of_the_cost_through_the_network_in_training():
    net = Network.from_layers(preset("course_3maps") + [Dropout(0.2), Dense(10, "identity")])
    params, x, labels = fake_params(net), images(4), jnp.asarray([0, 1, 2, 3])

    @jax.jit
    def cost(params, key):
        return cross_entropy(net.apply(params, x, train=True, key=key), labels)

    grads = jax.grad(cost)(params, jax.random.key(0))
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(params)
    for path, leaf in flatten_dict(grads, sep="/").items():
        assert leaf.shape == flatten_dict(params, sep="/")[path].shape
        assert bool(jnp.all(jnp.isfinite(leaf))) and float(jnp.max(jnp.abs(leaf))) > 0, path


def test_apply_refuses_an_input_that_is_not_a_batch_of_images():
    net = Network.from_layers(preset("course_3maps"))
    params = fake_params(net)
    with pytest.raises(ShapeError, match=r"batch of images.*\(28, 28, 1\)"):
        net.apply(params, jnp.zeros((28, 28, 1)))
    with pytest.raises(ShapeError, match="batch of images"):
        jax.jit(net.apply)(params, jnp.zeros((28, 28, 1)))


def test_apply_refuses_parameters_made_for_other_channels():
    net = Network.from_layers(preset("course_3maps"))
    params = fake_params(net, (28, 28, 1))
    pattern = r"layer 'conv1': parameter 'kernel' has shape \(5, 5, 1, 3\).*need \(5, 5, 3, 3\)"
    with pytest.raises(ShapeError, match=pattern):
        net.apply(params, jnp.zeros((2, 28, 28, 3)))
    with pytest.raises(ShapeError, match=pattern):  # at trace time, not an XLA error
        jax.jit(net.apply)(params, jnp.zeros((2, 28, 28, 3)))


def test_apply_refuses_parameters_made_for_another_image_size():
    net = Network.from_layers(preset("course_3maps"))
    params = fake_params(net, (28, 28, 1))
    with pytest.raises(ShapeError, match=r"layer 'dense1'.*\(432, 10\).*\(300, 10\)"):
        net.apply(params, jnp.zeros((1, 24, 24, 1)))  # 24 → 20 → 10: 10·10·3 = 300 inputs


def test_apply_refuses_missing_layer_parameters():
    net = Network.from_layers(preset("course_3maps"))
    params = fake_params(net)
    del params["dense1"]
    with pytest.raises(ShapeError, match=r"layer 'dense1': parameters \[\] do not match"):
        net.apply(params, images(1))


def test_nielsen_softmax_layer_starts_at_zero():
    net = Network.from_layers([Dense(30, "sigmoid"), Dense(10, "identity")], init_scheme="nielsen")
    params = init(net)
    np.testing.assert_array_equal(params["dense2"]["kernel"], np.zeros((30, 10)))
    np.testing.assert_array_equal(params["dense2"]["bias"], np.zeros((10,)))
    assert float(jnp.std(params["dense1"]["kernel"])) > 0
