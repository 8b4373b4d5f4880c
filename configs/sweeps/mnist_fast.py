"""The first stage of the search behind configs/mnist_fast.py: maps of the two conv layers ×
learning rate, with a hidden layer of 100 units, on the full MNIST (the book's split), 2 epochs of
Adam with warm-up and cosine decay, batch 128 (the second stage: mnist_fast_dense.py).

    python -m experiments.sweep --config=configs/sweeps/mnist_fast.py --workdir=sweeps/mnist_fast

Expect η 0.005 to beat 0.002 for every network, and every network near 99% after the 2
epochs. Measured: docs/results.md, "Sweep presets"; report:
configs/sweeps/reports/mnist_fast/report.md.
"""

import importlib.util
from pathlib import Path

from cnn_jax.sweep.bases import sweep_config


def fast_config():
    path = Path(__file__).resolve().parent.parent / "mnist_fast.py"
    spec = importlib.util.spec_from_file_location("mnist_fast", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def get_config():
    base = fast_config()
    base.model.layers[4]["features"] = 100  # as the search ran
    axes = [{"product": {"model.layers[0].features": [8, 16, 32],
                         "model.layers[2].features": [16, 32, 64],
                         "learning_rate": [0.002, 0.005]}}]
    return sweep_config("mnist_fast", axes, [0], base)
