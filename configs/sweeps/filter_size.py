"""Filter size of the first convolution: k ∈ {3, 5, 7, 9} × 3 seeds (12 trials).

    python -m experiments.sweep --config=configs/sweeps/filter_size.py --workdir=sweeps/filter

Base: cnn_jax/sweep/bases.py (CP(20) → CP(20) → softmax, 3 epochs on the embedded MNIST set).
Sizes: conv1 out = 28 − k + 1 = 26, 24, 22, 20; pool1 halves it (13, 12, 11, 10); conv2 (5×5)
gives 9, 8, 7, 6 and pool2 4, 4, 3, 3. All four are possible.
Measured on 2 busy CPU cores: 12 trials in 1 min 42 s (a compile per filter size; the other
seeds of a filter size compile nothing). Test accuracy at best validation, mean ± std over seeds:
k5 96.37 ± 0.15, k7 95.73 ± 1.59, k9 95.57 ± 0.61, k3 95.50 ± 0.26 (%): within about one
standard deviation of each other at this budget.
"""

from cnn_jax.sweep.bases import sweep_config


def get_config():
    axes = [{"product": {"model.layers[0].kernel": [3, 5, 7, 9]}}]
    return sweep_config("filter_size", axes, [0, 1, 2])
