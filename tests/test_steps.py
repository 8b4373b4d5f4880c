"""The compiled steps and the formulations against direct computations: the conv/pool
formulations equal the layers', one step is a hand-computed SGD update, a scan of N steps equals
N single steps, eval_chunk with padding weights equals a direct sum, and `formulations.choose`
picks what it documents."""

from __future__ import annotations

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cnn_jax.config import ConfigError, schema_defaults
from cnn_jax.layers import Conv, Dense, Dropout, Pool, conv2d, formulations, pool2d
from cnn_jax.layers.dropout import example_keys
from cnn_jax.layers.formulations import (
    Formulation,
    conv2d_canonical,
    conv2d_im2col,
    conv2d_offsets,
    pool2d_reshape,
)
from cnn_jax.losses import cross_entropy, l2_penalty
from cnn_jax.network import Network
from cnn_jax.presets import preset
from cnn_jax.shapes import window_geometry
from cnn_jax.train import experiment
from cnn_jax.train.state import create_state, init_params

IMPLS = [("lax", "lax"), ("im2col", "reshape"), ("lax", "reshape"), ("im2col", "lax"),
         ("offsets", "reshape"), ("canonical", "reshape")]


def tiny_network() -> Network:
    return Network.from_layers([Conv(3, 3), Pool("max", 2), Conv(4, 2, activation="sigmoid"),
                                Pool("avg", 2), Dense(10, "identity")])


def data(count: int, shape=(10, 10, 1), seed: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(count, *shape)).astype(np.float32)
    return jnp.asarray(images), jnp.asarray(rng.integers(0, 10, count).astype(np.int32))


def state_for(network, shape, batch, steps_per_epoch, lr=0.1, optimizer="sgd"):
    config = schema_defaults()
    config.batch_size, config.learning_rate, config.optimizer = batch, lr, optimizer
    return create_state(network, config, shape, steps_per_epoch)


@pytest.mark.parametrize("formulation", [conv2d_im2col, conv2d_offsets, conv2d_canonical])
@pytest.mark.parametrize("kernel,stride,padding,dilation,channels", [
    (5, 1, "VALID", 1, 1), (3, 2, "SAME", 1, 3), (3, 1, 1, 2, 2), ((2, 3), (2, 1), "VALID", 1, 4),
    (3, 2, "SAME", 1, 1), (3, 1, 1, 2, 1), ((2, 3), (2, 1), (1, 2), 1, 1),
])
def test_conv_formulations_equal_conv2d(formulation, kernel, stride, padding, dilation, channels):
    geometry = window_geometry("c", "conv", (11, 9), kernel, stride, padding, dilation)
    rows, cols = geometry
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(2, 11, 9, channels)).astype(np.float32))
    maps = 3  # ≤ OFFSETS_MAX_MAPS: conv2d_offsets sums over offsets where channels == 1
    k = jnp.asarray(rng.normal(size=(rows.kernel, cols.kernel, channels, maps)).astype(np.float32))
    b = jnp.asarray(rng.normal(size=(maps,)).astype(np.float32))
    expected = conv2d(x, k, b, stride=(rows.stride, cols.stride),
                      padding=((rows.pad_lo, rows.pad_hi), (cols.pad_lo, cols.pad_hi)),
                      dilation=(rows.dilation, cols.dilation))
    args = dict(stride=(rows.stride, cols.stride),
                padding=((rows.pad_lo, rows.pad_hi), (cols.pad_lo, cols.pad_hi)),
                dilation=(rows.dilation, cols.dilation))
    np.testing.assert_allclose(formulation(x, k, b, **args), expected, rtol=1e-5, atol=1e-5)

    def objective(conv, x, k, b):
        return jnp.sum(jnp.sin(conv(x, k, b, **args)))

    grads = jax.grad(functools.partial(objective, formulation), argnums=(0, 1, 2))(x, k, b)
    expected_grads = jax.grad(functools.partial(objective, conv2d), argnums=(0, 1, 2))(x, k, b)
    for got, want in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("size", [(8, 8), (9, 7)])
def test_pool_reshape_equals_pool2d(kind, size):
    x = jnp.asarray(np.random.default_rng(2).normal(size=(3, *size, 4)).astype(np.float32))
    np.testing.assert_allclose(pool2d_reshape(x, kind, (2, 2), (2, 2)),
                               pool2d(x, kind, (2, 2), (2, 2)), rtol=1e-6)


@pytest.mark.parametrize("conv_impl,pool_impl", IMPLS)
@pytest.mark.parametrize("name", ["course_3maps", "nielsen_cp2_fc100_relu"])
def test_forward_and_gradient_equal_network_apply(name, conv_impl, pool_impl):
    network = Network.from_layers(preset(name))
    params = init_params(network, jax.random.key(0), (28, 28, 1))
    x, y = data(4, (28, 28, 1))

    fast = Formulation(conv_impl, pool_impl)

    def loss(p, formulation):
        return cross_entropy(network.apply(p, x, formulation=formulation), y)

    np.testing.assert_allclose(network.apply(params, x, formulation=fast),
                               network.apply(params, x), rtol=1e-4, atol=1e-5)
    expected = jax.grad(loss)(params, None)
    got = jax.grad(loss)(params, fast)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("conv_impl,pool_impl", IMPLS)
def test_one_step_is_a_hand_computed_sgd_update(conv_impl, pool_impl):
    network = tiny_network()
    images, labels = data(12)
    state = state_for(network, (10, 10, 1), batch=4, steps_per_epoch=3, lr=0.1)
    order = jnp.asarray([5, 2, 7, 0, 11, 1, 3, 9, 4, 6, 8, 10], jnp.int32)
    params = jax.tree_util.tree_map(np.asarray, state.params)
    index = order[4:8]
    x, y = images[index], labels[index]
    grads = jax.grad(lambda p: cross_entropy(network.apply(p, x), y))(params)
    logits = network.apply(params, x)
    run = experiment.train_steps(network, "cross_entropy", "sgd", "constant", 4, 1, None,
                            Formulation(conv_impl, pool_impl))
    new = run(state, images, labels, order, jnp.int32(1))
    for got, p, g in zip(jax.tree_util.tree_leaves(new.params), jax.tree_util.tree_leaves(params),
                         jax.tree_util.tree_leaves(grads), strict=True):
        np.testing.assert_allclose(got, p - 0.1 * g, rtol=1e-5, atol=1e-6)
    assert int(new.step) == 1
    assert int(new.epoch_sums["count"]) == 4
    assert int(new.epoch_sums["correct"]) == int(jnp.sum(jnp.argmax(logits, -1) == y))
    np.testing.assert_allclose(new.epoch_sums["loss"], 4 * cross_entropy(logits, y), rtol=1e-5)


@pytest.mark.parametrize("unroll", [1, 2])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_scan_of_n_steps_equals_n_single_steps(optimizer, unroll):
    network = tiny_network()
    images, labels = data(20)
    order = experiment.epoch_order(jax.random.key(3), 0, 20)
    make = lambda: state_for(network, (10, 10, 1), 4, 5, lr=0.05, optimizer=optimizer)  # noqa: E731
    single = experiment.train_steps(network, "cross_entropy", optimizer, "cosine", 4, 1, None)
    fused = experiment.train_steps(network, "cross_entropy", optimizer, "cosine", 4, 3, None,
                              unroll=unroll)
    one_by_one = make()
    for batch in range(1, 4):
        one_by_one = single(one_by_one, images, labels, order, jnp.int32(batch))
    together = fused(make(), images, labels, order, jnp.int32(1))
    for a, b in zip(jax.tree_util.tree_leaves(together), jax.tree_util.tree_leaves(one_by_one),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_state_is_donated():
    network = tiny_network()
    images, labels = data(8)
    state = state_for(network, (10, 10, 1), 4, 2)
    run = experiment.train_steps(network, "cross_entropy", "sgd", "constant", 4, 1, None)
    run(state, images, labels, jnp.arange(8), jnp.int32(0))
    assert state.params["conv1"]["kernel"].is_deleted()


@pytest.mark.parametrize("conv_impl,pool_impl", IMPLS[:2])
def test_eval_chunk_with_padding_equals_direct_computation(conv_impl, pool_impl):
    network = tiny_network()
    params = init_params(network, jax.random.key(4), (10, 10, 1))
    images, labels = data(8, seed=5)
    weights = jnp.asarray([1, 1, 1, 1, 1, 1, 0, 0], jnp.float32)  # the last two are padding
    run = experiment.eval_chunk(network, "cross_entropy", 4, None,
                                Formulation(conv_impl, pool_impl))
    total_loss = total_hits = 0.0
    for chunk in range(2):
        loss, hits = run(params, images, labels, weights, chunk)
        total_loss, total_hits = total_loss + loss, total_hits + hits
    logits = network.apply(params, images[:6])
    expected_loss = 6 * cross_entropy(logits, labels[:6])
    expected_hits = jnp.sum(jnp.argmax(logits, -1) == labels[:6])
    np.testing.assert_allclose(total_loss, expected_loss, rtol=1e-5)
    assert float(total_hits) == float(expected_hits)


def plans(name: str = "nielsen_cp2_fc100_relu"):
    return Network.from_layers(preset(name)).plan((28, 28, 1))


def test_choose_auto_per_backend_and_mode():
    def chosen(backend, training, batch=10, name="course_3maps"):
        return formulations.choose("auto", "auto", 0, plans=plans(name), batch_size=batch,
                                   backend=backend, training=training)

    assert chosen("cpu", True) == Formulation("offsets", "reshape", 1)
    assert chosen("cpu", True, 128) == Formulation("offsets", "reshape", 2)
    assert chosen("cpu", False, 1000) == Formulation("lax", "reshape", 1)
    assert chosen("gpu", True) == Formulation("lax", "lax", 1)
    # Nielsen's conv1 has 20 maps: outside the offsets regime, so 'auto' keeps lax there
    assert chosen("cpu", True, name="nielsen_cp2_fc100_relu").conv == "lax"
    assert formulations.choose("lax", "lax", 1, plans=plans(), batch_size=10, backend="cpu",
                               training=True) == Formulation("lax", "lax", 1)


def test_scan_on_cpu_for_small_batches_with_canonical_gradients():
    nielsen, course = plans(), plans("course_3maps")
    assert formulations.pick_strategy("auto", "cpu", batch_size=10, plans=nielsen) == "scan"
    assert formulations.pick_strategy("auto", "cpu", batch_size=128, plans=nielsen) == "step"
    # the offsets form's gradient is XLA's own convolution: kept out of a scan
    assert formulations.pick_strategy("auto", "cpu", batch_size=10, plans=course) == "step"
    assert formulations.pick_strategy("auto", "gpu", batch_size=128, plans=nielsen) == "scan"
    assert formulations.pick_strategy("step", "cpu", batch_size=10, plans=nielsen) == "step"
    # an explicit conv whose gradient is XLA's own: a scan would run it as a slow loop
    for conv in ("lax", "im2col"):
        assert formulations.pick_strategy("auto", "cpu", batch_size=10, plans=nielsen,
                                          conv=conv) == "step"
    assert formulations.pick_strategy("auto", "cpu", batch_size=10, plans=course,
                                      conv="canonical") == "scan"
    scanned = formulations.choose("auto", "auto", 0, plans=nielsen, batch_size=10,
                                  backend="cpu", training=True, scan=True)
    assert scanned == Formulation("canonical", "reshape", 1)
    assert formulations.choose("auto", "auto", 0, plans=nielsen, batch_size=10, backend="gpu",
                               training=True, scan=True) == Formulation("lax", "lax", 1)


def test_scanned_steps_with_canonical_gradients_have_no_slow_convolution():
    """XLA:CPU leaves JAX's gradient convolutions inside a while body in a layout it runs as an
    unoptimised loop; the canonical-gradient convolution keeps every convolution of the scanned
    step in the forward layout (b01f_01io->b01f)."""
    network = tiny_network()
    images, labels = data(8)
    state = state_for(network, (10, 10, 1), 4, 2)
    labels_of = {}
    for conv in ("lax", "canonical"):
        run = experiment.train_steps(network, "cross_entropy", "sgd", "constant", 4, 2, None,
                                Formulation(conv, "reshape", 1))
        text = run.lower(state, images, labels, jnp.arange(8), jnp.int32(0)).compile().as_text()
        labels_of[conv] = set(re.findall(r"dim_labels=(\S+?),", text))
    assert labels_of["canonical"] == {"b01f_01io->b01f"}
    assert labels_of["lax"] != {"b01f_01io->b01f"}  # the fault this formulation avoids


def test_choices_that_cannot_take_effect_are_refused():
    with pytest.raises(ConfigError, match="formulation.conv"):
        formulations.choose("fft", "auto", 0, plans=plans(), batch_size=10, backend="cpu",
                            training=True)
    with pytest.raises(ConfigError, match="one input channel"):  # no conv layer of 1 → ≤ 4 maps
        formulations.choose("offsets", "auto", 0, plans=plans(), batch_size=10, backend="cpu",
                            training=True)
    strided = Network.from_layers([Conv(3, 3, stride=2), Dense(10, "identity")]).plan((9, 9, 1))
    with pytest.raises(ConfigError, match="stride 1 and dilation 1"):
        formulations.choose("canonical", "auto", 0, plans=strided, batch_size=10, backend="cpu",
                            training=True)
    with pytest.raises(ConfigError, match="window equals its stride"):  # no pool at all
        formulations.choose("auto", "reshape", 0, plans=plans("nielsen_fc100"), batch_size=10,
                            backend="cpu", training=True)
    with pytest.raises(ConfigError, match="divisor of the batch of 10"):
        formulations.choose("auto", "auto", 3, plans=plans(), batch_size=10, backend="cpu",
                            training=True)


def test_epoch_order_and_all_finite():
    a = experiment.epoch_order(jax.random.key(0), 1, 50)
    assert sorted(np.asarray(a).tolist()) == list(range(50))
    np.testing.assert_array_equal(a, experiment.epoch_order(jax.random.key(0), 1, 50))
    assert not np.array_equal(a, experiment.epoch_order(jax.random.key(0), 2, 50))
    assert bool(experiment.all_finite({"a": jnp.ones(3), "n": jnp.arange(3)}))
    assert not bool(experiment.all_finite({"a": jnp.asarray([1.0, jnp.nan])}))
    assert not bool(experiment.all_finite({"a": jnp.asarray([jnp.inf])}))


def test_train_step_matches_optax_momentum_reference():
    """Momentum uses optax's own update: one step equals optax.sgd(lr, momentum) by hand."""
    network = tiny_network()
    images, labels = data(4)
    state = state_for(network, (10, 10, 1), 4, 1, lr=0.1, optimizer="momentum")
    params = jax.tree_util.tree_map(np.asarray, state.params)
    momentum = float(state.opt_state.hyperparams["momentum"])
    tx = optax.sgd(0.1, momentum=momentum)
    grads = jax.grad(lambda p: cross_entropy(network.apply(p, images), labels))(params)
    updates, _ = tx.update(grads, tx.init(params), params)
    expected = optax.apply_updates(params, updates)
    run = experiment.train_steps(network, "cross_entropy", "momentum", "constant", 4, 1, None)
    new = run(state, images, labels, jnp.arange(4), jnp.int32(0))
    for a, b in zip(jax.tree_util.tree_leaves(new.params), jax.tree_util.tree_leaves(expected),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_auto_microbatches():
    course = plans("course_3maps")
    assert [formulations.auto_microbatches(b, course) for b in (1, 10, 64, 127, 128, 1024)] == [
        1, 1, 1, 1, 2, 2]
    assert formulations.choose("auto", "auto", 0, plans=course, batch_size=128, backend="gpu",
                               training=True).microbatches == 1
    # dense layers do half or more of the work: one batch (measured faster); conv-heavy: split
    fc1000, fc100 = plans("nielsen_cp2_fc1000_dropout"), plans("nielsen_cp2_fc100_relu")
    assert formulations.dense_share(fc1000) >= 0.5 > formulations.dense_share(fc100)
    assert formulations.auto_microbatches(128, fc1000) == 1
    assert formulations.auto_microbatches(128, fc100) == 2
    explicit = formulations.choose("auto", "auto", 2, plans=fc1000, batch_size=128,
                                   backend="cpu", training=True)
    assert explicit.microbatches == 2
    assert formulations.choose("auto", "auto", 4, plans=fc100, batch_size=128, backend="gpu",
                               training=True).microbatches == 4
    assert formulations.choose("auto", "auto", 0, plans=fc100, batch_size=128, backend="cpu",
                               training=True, devices=4).microbatches == 1  # sharded batch


@pytest.mark.parametrize("microbatches", [2, 4])
def test_microbatched_step_is_the_same_sgd_update(microbatches):
    # mean of the micro-batches' gradients = gradient of the batch's mean loss; + λ·w once
    network = tiny_network()
    images, labels = data(8)
    state = state_for(network, (10, 10, 1), batch=8, steps_per_epoch=1, lr=0.1)
    state = state.replace(hyper={**state.hyper, "l2": jnp.float32(0.01)})
    params = jax.tree_util.tree_map(np.asarray, state.params)
    order = jnp.arange(8, dtype=jnp.int32)

    def objective(p):
        return cross_entropy(network.apply(p, images), labels) + l2_penalty(p, 0.01)

    grads = jax.grad(objective)(params)
    run = experiment.train_steps(network, "cross_entropy", "sgd", "constant", 8, 1, None,
                            Formulation("lax", "lax", microbatches))
    new = run(state, images, labels, order, jnp.int32(0))
    for got, p, g in zip(jax.tree_util.tree_leaves(new.params), jax.tree_util.tree_leaves(params),
                         jax.tree_util.tree_leaves(grads), strict=True):
        np.testing.assert_allclose(got, p - 0.1 * g, rtol=1e-5, atol=1e-6)
    logits = network.apply(params, images)
    assert int(new.epoch_sums["correct"]) == int(jnp.sum(jnp.argmax(logits, -1) == labels))
    np.testing.assert_allclose(new.epoch_sums["loss"], 8 * cross_entropy(logits, labels),
                               rtol=1e-5)


def test_dropout_masks_do_not_depend_on_the_micro_batch_split():
    """One key per example: 1, 2 or 4 micro-batches give the update computed by hand with the
    masks of `example_keys(fold_in(state key, step), batch)`."""
    network = Network.from_layers([Conv(3, 3), Pool("max", 2), Dropout(0.5),
                                   Dense(10, "identity")])
    images, labels = data(8)
    state = state_for(network, (10, 10, 1), batch=8, steps_per_epoch=1, lr=0.1)
    params = jax.tree_util.tree_map(np.asarray, state.params)
    step_key = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)
    keys = example_keys(step_key, 8)
    grads = jax.grad(lambda p: cross_entropy(
        network.apply(p, images, train=True, key=keys), labels))(params)
    expected = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, params, grads)
    for microbatches in (1, 2, 4):
        run = experiment.train_steps(network, "cross_entropy", "sgd", "constant", 8, 1, None,
                                Formulation("lax", "lax", microbatches))
        new = run(jax.tree_util.tree_map(jnp.copy, state), images, labels,
                  jnp.arange(8, dtype=jnp.int32), jnp.int32(0))
        for got, want in zip(jax.tree_util.tree_leaves(new.params),
                             jax.tree_util.tree_leaves(expected), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=microbatches)
    one_key = jax.grad(lambda p: cross_entropy(
        network.apply(p, images, train=True, key=step_key), labels))(params)
    assert not np.allclose(one_key["dense1"]["kernel"], grads["dense1"]["kernel"])

