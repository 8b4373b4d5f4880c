"""Costs and metrics against hand computations, for stability and against finite differences."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from cnn_jax import accuracy, cross_entropy, l2_penalty, quadratic_cost
from cnn_jax.losses import correct, get_loss


def hand_log_softmax(row: list[float], index: int) -> float:
    """log(e^{z_i} / Σ_j e^{z_j}) with Python floats."""
    return row[index] - math.log(sum(math.exp(z) for z in row))


def test_cross_entropy_is_mean_negative_log_softmax_of_the_label():
    logits = [[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]]
    labels = [2, 0]
    expected = -(hand_log_softmax(logits[0], 2) + hand_log_softmax(logits[1], 0)) / 2
    value = cross_entropy(jnp.asarray(logits), jnp.asarray(labels))
    assert float(value) == pytest.approx(expected, rel=1e-6)


def test_cross_entropy_of_uniform_logits_is_log_classes():
    value = cross_entropy(jnp.zeros((4, 10)), jnp.asarray([0, 3, 7, 9]))
    assert float(value) == pytest.approx(math.log(10), rel=1e-6)


@pytest.mark.parametrize(
    ("label", "expected"), [(0, 0.0), (1, 1e4), (2, 2e4)], ids=["right", "off-by-1e4", "off-by-2e4"]
)
def test_cross_entropy_is_stable_for_huge_logits(label, expected):
    logits = jnp.asarray([[1e4, 0.0, -1e4]])
    labels = jnp.asarray([label])
    value = cross_entropy(logits, labels)
    assert bool(jnp.isfinite(value))
    assert float(value) == pytest.approx(expected, abs=1e-3)
    grad = jax.grad(cross_entropy)(logits, labels)
    assert bool(jnp.all(jnp.isfinite(grad)))
    one_hot = np.eye(3)[label]
    np.testing.assert_allclose(grad[0], np.array([1.0, 0.0, 0.0]) - one_hot, atol=1e-6)


def test_cross_entropy_gradient_is_softmax_minus_one_hot_over_batch():
    logits = jnp.asarray([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    grad = jax.grad(cross_entropy)(logits, jnp.asarray([0, 1]))
    exps = np.exp([1.0, 2.0, 3.0])
    expected = np.array([exps / exps.sum() - [1, 0, 0], np.full(3, 1 / 3) - [0, 1, 0]]) / 2
    np.testing.assert_allclose(grad, expected, atol=1e-6)


def test_quadratic_cost_hand_example():
    # softmax([0, 0]) = (½, ½) → ½·((1 − ½)² + (0 − ½)²) = ¼ ; softmax([ln 3, 0]) = (¾, ¼), label 1
    # → ½·((0 − ¾)² + (1 − ¼)²) = 9/16 ; mean = (¼ + 9/16)/2 = 13/32
    logits = jnp.asarray([[0.0, 0.0], [math.log(3.0), 0.0]])
    value = quadratic_cost(logits, jnp.asarray([0, 1]))
    assert float(value) == pytest.approx(13 / 32, rel=1e-6)


def test_quadratic_cost_is_stable_for_huge_logits():
    logits = jnp.asarray([[1e4, -1e4, 0.0]])
    value = quadratic_cost(logits, jnp.asarray([1]))
    assert float(value) == pytest.approx(1.0, abs=1e-6)  # ½·(1² + 1²)
    assert bool(jnp.all(jnp.isfinite(jax.grad(quadratic_cost)(logits, jnp.asarray([1])))))


def test_l2_penalty_counts_kernels_only():
    params = {
        "conv1": {"kernel": jnp.asarray([[1.0, 2.0]]), "bias": jnp.asarray([100.0])},
        "local1": {"kernel": jnp.asarray([[[2.0]]]), "bias": jnp.asarray([[[50.0]]])},
        "dense1": {"kernel": jnp.asarray([-3.0]), "bias": jnp.asarray([7.0, 8.0])},
    }
    # ½ · 0.1 · (1 + 4 + 4 + 9) = 0.9 ; the biases (100, 50, 7, 8) play no part
    assert float(l2_penalty(params, 0.1)) == pytest.approx(0.9, rel=1e-6)
    grads = jax.grad(l2_penalty)(params, 0.1)
    np.testing.assert_allclose(grads["conv1"]["kernel"], [[0.1, 0.2]], rtol=1e-6)
    for layer in params:
        np.testing.assert_array_equal(grads[layer]["bias"], np.zeros_like(params[layer]["bias"]))


def test_l2_penalty_without_kernels_is_zero():
    assert float(l2_penalty({}, 1.0)) == 0.0
    assert float(l2_penalty({"dense1": {"bias": jnp.ones(3)}}, 1.0)) == 0.0


def test_accuracy_and_correct_by_argmax():
    logits = jnp.asarray([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.0, 1.0]])
    labels = jnp.asarray([1, 1, 1, 0, 0])
    assert int(correct(logits, labels)) == 3
    assert float(accuracy(logits, labels)) == pytest.approx(3 / 5)


def test_get_loss_by_name_and_unknown_name():
    assert get_loss("cross_entropy") is cross_entropy
    assert get_loss("quadratic") is quadratic_cost
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        get_loss("hinge")


@pytest.mark.parametrize("loss", [cross_entropy, quadratic_cost], ids=["cross_entropy", "quad"])
def test_loss_gradient_matches_finite_differences(loss):
    labels = jnp.asarray([2, 0, 1])
    logits = np.random.default_rng(0).normal(size=(3, 4))
    with jax.enable_x64(True):
        check_grads(lambda z: loss(z, labels), (jnp.asarray(logits),), order=1, modes=["rev"],
                    eps=1e-4, atol=1e-6, rtol=1e-6)


def test_l2_penalty_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        params = {
            "conv1": {"kernel": jnp.asarray(rng.normal(size=(3, 3, 1, 2))),
                      "bias": jnp.asarray(rng.normal(size=(2,)))},
            "dense1": {"kernel": jnp.asarray(rng.normal(size=(4, 3))),
                       "bias": jnp.asarray(rng.normal(size=(3,)))},
        }
        check_grads(lambda p: l2_penalty(p, 0.3), (params,), order=1, modes=["rev"], eps=1e-4,
                    atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("loss", [cross_entropy, quadratic_cost, accuracy])
def test_losses_work_under_jit(loss):
    logits = jnp.asarray([[2.0, 1.0, 0.0], [0.0, 0.5, 3.0]])
    labels = jnp.asarray([0, 1])
    assert float(jax.jit(loss)(logits, labels)) == pytest.approx(float(loss(logits, labels)))


def test_l2_penalty_works_under_jit_with_traced_strength():
    params = {"dense1": {"kernel": jnp.full((2, 2), 2.0), "bias": jnp.ones(2)}}
    assert float(jax.jit(l2_penalty)(params, 0.5)) == pytest.approx(0.5 * 0.5 * 16.0)


@pytest.mark.parametrize("loss", [cross_entropy, quadratic_cost])
@pytest.mark.parametrize("label", [10, -1])
def test_labels_outside_the_classes_are_refused(loss, label):
    """Issue 21: label 10 of 10 classes gave a finite cost (0.41 for these logits) or NaN."""
    from cnn_jax.errors import DataError

    logits = jnp.array([[2.0, 0.5] + [0.0] * 8, [0.0] * 10])
    with pytest.raises(DataError, match=r"labels must be integers in \[0, 10\)"):
        loss(logits, jnp.array([0, label]))
    assert np.isfinite(float(jax.jit(loss)(logits, jnp.array([0, 9]))))  # traced: not checked
