"""The time-to-accuracy benchmark: what each participant is told to train, and a smoke run of
the whole path (no timing assertions)."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_jax.bench import time_to_accuracy as tta
from cnn_jax.bench.runner import torch_available

pytestmark = pytest.mark.usefixtures("train_env")


def test_the_pytorch_twin_gets_the_projects_network_optimizer_and_schedule():
    import jax.numpy as jnp

    from cnn_jax.config import layer_dicts
    from cnn_jax.optim import learning_rate_at

    settings = tta.Settings()
    project = tta.worker_spec(tta.PARTICIPANTS["project-fast"], 1, settings)
    torch = tta.worker_spec(tta.PARTICIPANTS["pytorch-fast"], 1, settings)
    config = tta.training_config(tta.PARTICIPANTS["project-fast"], 1, settings)
    assert project["config"]["seed"] == torch["seed"] == 1
    assert torch["layers"] == layer_dicts(config) and torch["batch_size"] == config.batch_size
    steps = 50_000 // config.batch_size * config.num_epochs
    assert len(torch["learning_rates"]) == steps == torch["epochs"] * (50_000 // config.batch_size)
    hyper = {"learning_rate": jnp.float32(config.learning_rate),
             "total_steps": jnp.float32(steps)}
    for step in (0, 10, steps // 2, steps - 1):
        assert torch["learning_rates"][step] == pytest.approx(
            float(learning_rate_at(config.schedule, jnp.asarray(step), hyper)), rel=1e-6)


def test_row_4_in_pytorch_has_the_books_l2_on_the_weights_only():
    spec = tta.worker_spec(tta.PARTICIPANTS["pytorch-nielsen"], 0, tta.Settings())
    assert spec["optimizer"] == "sgd" and spec["batch_size"] == 10 and spec["momentum"] == 0
    assert spec["weight_decay"] == pytest.approx(0.1 / 5000)  # ½·λ·Σw²/batches → λ/batches·w
    np.testing.assert_allclose(spec["learning_rates"], 0.03, rtol=1e-6)
    examples = tta.worker_spec(tta.PARTICIPANTS["pytorch-examples"], 0, tta.Settings())
    assert examples["optimizer"] == "adadelta" and examples["batch_size"] == 64
    np.testing.assert_allclose(examples["learning_rates"][:3], [1.0, 0.7, 0.49])
    assert examples["rate_per_epoch"] and examples["normalize"]


@pytest.mark.slow
@pytest.mark.skipif(not torch_available(), reason="PyTorch is not installed; the project's side "
                    "alone runs in tests/test_gpu_check.py's rehearsal")
def test_a_smoke_run_reaches_a_low_target_and_makes_the_table():
    participants = ("project-fast", "pytorch-fast")
    settings = tta.Settings(participants=participants, seeds=(0,), target=0.3, eval_every=256,
                            train_images=1024, max_epochs=1)
    report = tta.run(settings, log=lambda *_: None)
    for name in participants:
        (run,) = report["results"][name]
        assert run["reached"] and run["wall_to_target_s"] > 0 and run["evaluations"] >= 1
        assert run["jax_imported"] == (name.startswith("project"))
    text = tta.markdown(report)
    assert "| project-fast |" in text and "1/1" in text and "Load average" not in text
    assert "load average before" in text


@pytest.mark.skipif(not torch_available(), reason="PyTorch is not installed")
@pytest.mark.parametrize("name", ["pytorch-fast", "pytorch-nielsen"])
def test_the_pytorch_twin_starts_from_the_projects_weights_and_computes_the_same(name):
    import jax
    import torch

    from cnn_jax.bench import torch_nets, tta_worker
    from cnn_jax.config import build_network
    from cnn_jax.train.state import create_state

    settings = tta.Settings()
    participant = tta.PARTICIPANTS[name]
    spec = tta.worker_spec(participant, 0, settings)
    model = torch_nets.torch_model(spec["layers"])
    tta_worker.load_initial(model, spec["initial_params"])
    config = tta.training_config(participant, 0, settings)
    network = build_network(config)
    params = create_state(network, config, (28, 28, 1), 1).params
    images = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    expected = np.asarray(jax.jit(network.apply)(params, images))
    with torch.no_grad():
        got = model(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
