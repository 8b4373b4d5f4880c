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
