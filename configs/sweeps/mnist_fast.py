"""The first stage of the search behind configs/mnist_fast.py: maps of the two conv layers ×
learning rate, with a hidden layer of 100 units, on the full MNIST (the book's split), 2 epochs of
Adam with warm-up and cosine decay, batch 128 (the second stage: mnist_fast_dense.py).

    python -m experiments.sweep --config=configs/sweeps/mnist_fast.py --workdir=sweeps/mnist_fast

Measured on the 2-core Intel Xeon VM while other runs shared it (load ≈ 5: train times are
distorted, accuracies are not), seed 0, test accuracy after the 2 epochs: η 0.005 beats 0.002 for
every network; with 0.005: 32/64 99.24%, 32/32 99.19%, 16/64 99.15%, 16/32 99.10%, 8/64 99.09%,
32/16 99.00%, 8/32 98.96%, 16/16 98.90%, 8/16 98.69%. 16/64 was the cheapest network above 99.1%
(1.97 M multiply-adds per image against 3.84 M for 32/64); the time-to-99% benchmark then timed
it (and 16/32, 32/32) from process start: 16/64 first reached 99% after 1.5 epochs, 20.4 s, the
others 21–22 s. Report: configs/sweeps/reports/mnist_fast/report.md.
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
