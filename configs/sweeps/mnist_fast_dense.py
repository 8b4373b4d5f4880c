"""The second stage of the search behind configs/mnist_fast.py: its network (conv 16 → conv 64,
found by configs/sweeps/mnist_fast.py) with a hidden layer of 64 or 100 units, η 0.005 or 0.007,
three seeds each, on the full MNIST (the book's split), 2 epochs of Adam with warm-up and cosine
decay, batch 128.

    python -m experiments.sweep --config=configs/sweeps/mnist_fast_dense.py \\
        --workdir=sweeps/mnist_fast_dense

Expect every trial above 99.0%, the four configurations within about 0.1% of each other.
Measured: docs/results.md, "Sweep presets"; report:
configs/sweeps/reports/mnist_fast_dense/report.md.
"""

from cnn_jax.sweep.bases import sweep_config
from configs.sweeps.mnist_fast import fast_config


def get_config():
    axes = [{"product": {"model.layers[4].features": [64, 100],
                         "learning_rate": [0.005, 0.007]}}]
    return sweep_config("mnist_fast_dense", axes, [0, 1, 2], fast_config())
