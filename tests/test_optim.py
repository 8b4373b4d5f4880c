"""Optimizers and schedules: every schedule's factor against its closed form."""

from __future__ import annotations

import math

import jax.numpy as jnp
import pytest

from cnn_jax.optim import OPTIMIZERS, SCHEDULES, WARMUP, learning_rate_at, make_optimizer

CLOSED_FORMS = {
    "constant": lambda p: 1.0,
    "cosine": lambda p: 0.5 * (1 + math.cos(math.pi * p)),
    "step": lambda p: 1.0 if p < 0.5 else (0.1 if p < 0.75 else 0.01),
    "linear": lambda p: 1.0 - p,
    "warmup_cosine": lambda p: p / WARMUP if p < WARMUP else
    0.5 * (1 + math.cos(math.pi * (p - WARMUP) / (1 - WARMUP))),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedules_equal_their_closed_forms(name):
    for progress in (0.0, 0.05, 0.1, 0.3, 0.5, 0.74, 0.76, 0.99, 1.0):
        assert float(SCHEDULES[name](jnp.float32(progress))) == pytest.approx(
            CLOSED_FORMS[name](progress), abs=1e-6), (name, progress)


def test_learning_rate_at_scales_the_base_rate_and_clips_progress():
    hyper = {"learning_rate": jnp.float32(0.2), "total_steps": jnp.float32(100)}
    assert float(learning_rate_at("linear", jnp.asarray(25), hyper)) == pytest.approx(0.15)
    assert float(learning_rate_at("linear", jnp.asarray(150), hyper)) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="unknown schedule"):
        learning_rate_at("onecycle", jnp.asarray(0), hyper)


def test_every_optimizer_injects_its_learning_rate():
    import jax

    for name in OPTIMIZERS:
        state = make_optimizer(name).init({"w": jnp.ones(3)})
        assert "learning_rate" in state.hyperparams, name
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("rmsprop")
    del jax


def test_adam_betas_come_from_the_config_and_match_optax():
    import jax
    import optax

    from cnn_jax.config import schema_defaults
    from cnn_jax.network import Network
    from cnn_jax.train.state import create_state

    config = schema_defaults()
    config.optimizer, config.adam_b1, config.adam_b2 = "adam", 0.7, 0.9
    network = Network.from_layers([{"type": "dense", "features": 3, "activation": "identity"}])
    state = create_state(network, config, (2, 2, 1), steps_per_epoch=1)
    hyper = state.opt_state.hyperparams
    assert float(hyper["b1"]) == pytest.approx(0.7) and float(hyper["b2"]) == pytest.approx(0.9)
    opt_state = state.opt_state._replace(hyperparams={**hyper, "learning_rate": jnp.float32(0.01)})
    reference = optax.adam(0.01, b1=0.7, b2=0.9)
    reference_state = reference.init(state.params)
    for scale in (1.0, 3.0):  # the second update depends on the betas (the first does not)
        grads = jax.tree_util.tree_map(lambda p, s=scale: s * jnp.ones_like(p), state.params)
        ours, opt_state = make_optimizer("adam").update(grads, opt_state, state.params)
        theirs, reference_state = reference.update(grads, reference_state, state.params)
    for a, b in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(theirs),
                    strict=True):
        assert jnp.allclose(a, b)
