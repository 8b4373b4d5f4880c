"""`prepare` + `fit(experiment, hooks)`: what hooks hear, a fit cut at any steps equal to one
fit, a hook's stop request, and the learning rate held in one slot of the state."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from cnn_jax.config import load_for_config, schema_defaults
from cnn_jax.losses import cross_entropy
from cnn_jax.network import Network
from cnn_jax.train import Hook, fit, prepare
from cnn_jax.train.experiment import train_steps
from cnn_jax.train.hooks import Divergence
from cnn_jax.train.state import create_state

pytestmark = pytest.mark.usefixtures("train_env")


def scan_config(**overrides):
    """tiny.py (400 images, batches of 10: 40 steps an epoch, 2 epochs) in chunks of 10 steps."""
    return tiny_config(strategy="scan", log_every_steps=10, **overrides)


class Recorder(Hook):
    """Records every event; asks to stop once `stop_at` steps are taken."""

    def __init__(self, stop_at: int | None = None):
        self.stop_at, self.step, self.events = stop_at, 0, []

    def stop_reason(self):
        return "enough" if self.stop_at is not None and self.step >= self.stop_at else None

    def on_chunk(self, experiment, epoch, step, num_steps):
        self.step = step
        self.events.append(("chunk", epoch, step, num_steps))

    def on_epoch_end(self, experiment, epoch, step, records):
        self.events.append(("epoch", epoch, step, sorted(records)))

    def on_end(self, experiment, step, outcomes):
        self.events.append(("end", step, {i: o["status"] for i, o in outcomes.items()}))


def without_times(records):
    return [{k: v for k, v in r.items() if "time" not in k and "per_second" not in k}
            for r in records]


def test_hooks_hear_every_chunk_epoch_and_the_end_in_order():
    config = scan_config()
    recorder = Recorder()
    outcomes = fit(prepare(config, load_for_config(config)), [recorder])
    chunks = [("chunk", step // 41, step, 10) for step in range(10, 81, 10)]
    expected = [*chunks[:4], ("epoch", 0, 40, [0]), *chunks[4:], ("epoch", 1, 80, [0]),
                ("end", 80, {0: "done"})]
    assert recorder.events == expected
    assert outcomes[0]["status"] == "done" and outcomes[0]["epochs"] == 2


def test_a_fit_cut_at_any_steps_equals_one_fit():
    """Paused mid-chunk, mid-epoch and at an epoch's end, then continued: the same parameters
    (bitwise) and the same epoch records as one uninterrupted fit."""
    config = scan_config()
    dataset = load_for_config(config)
    whole = prepare(config, dataset)
    fit(whole)
    cut = prepare(config, dataset)
    for until in (15, 40, 63):
        assert fit(cut, [Divergence()], until=until) == [None]
        assert cut.step == until
    fit(cut)
    assert cut.outcomes[0]["status"] == "done"
    assert without_times(cut.history[0]) == without_times(whole.history[0])
    for a, b in zip(jax.tree_util.tree_leaves(cut.state.params),
                    jax.tree_util.tree_leaves(whole.state.params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_hooks_stop_request_ends_the_runs_interrupted_at_a_chunk_boundary():
    config = scan_config()
    recorder = Recorder(stop_at=20)
    experiment = prepare(config, load_for_config(config))
    outcomes = fit(experiment, [recorder])
    assert recorder.events[-1] == ("end", 20, {0: "interrupted"})
    assert outcomes[0]["status"] == "interrupted" and outcomes[0]["step"] == 20
    assert experiment.step == 20 and int(experiment.state.step) == 20


def test_the_learning_rate_lives_in_one_slot_and_stays_the_base_rate():
    """The state holds the base rate once (the optimizer's injected hyper-parameter); a step
    uses the scheduled rate without storing it: linear decay over 4 steps gives 0.1 at step 0 and
    0.1 · (1 − 1/4) = 0.075 at step 1, as two SGD steps by hand."""
    config = schema_defaults()
    config.learning_rate, config.schedule, config.l2, config.num_epochs = 0.1, "linear", 0.0, 2
    network = Network.from_layers([{"type": "dense", "features": 3, "activation": "identity"}])
    state = create_state(network, config, (2, 2, 1), steps_per_epoch=2)  # 4 steps in all
    assert "learning_rate" not in state.hyper
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.random((4, 2, 2, 1), np.float32))
    labels = jnp.asarray([0, 1, 2, 1], jnp.int32)

    def grad(params):
        return jax.grad(lambda p: cross_entropy(network.apply(p, images), labels))(params)

    expected = jax.tree_util.tree_map(np.asarray, state.params)
    for rate in (0.1, 0.075):
        expected = jax.tree_util.tree_map(lambda p, g, r=rate: p - r * g, expected,
                                          grad(expected))
    run = train_steps(network, config.loss, "sgd", "linear", 4, 1)
    for _ in range(2):
        state = run(state, images, labels, jnp.arange(4), jnp.int32(0))
        assert float(state.opt_state.hyperparams["learning_rate"]) == pytest.approx(0.1)
    for a, b in zip(jax.tree_util.tree_leaves(state.params), jax.tree_util.tree_leaves(expected),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
