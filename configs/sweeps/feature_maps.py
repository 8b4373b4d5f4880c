"""Number of feature maps of the first convolution on the full MNIST: {1, 3, 6, 20, 40} × 5 seeds
(25 trials).

    python -m experiments.sweep --config=configs/sweeps/feature_maps.py --workdir=sweeps/maps

Base: `mnist_base()` (cnn_jax/sweep/bases.py). Sizes do not change (conv1 24×24×n, pool1
12×12×n); parameters and multiply-adds grow with n (conv1: 26·n parameters, 24·24·25·n MACs;
conv2: 25·n·20 + 20 parameters). The report compares every n with f = 20 (the base) on the 5
common seeds, and plots accuracy against parameters and multiply-adds. Not yet run on the full
MNIST (docs/study.md gives what the course study suggests about the number of maps).
"""

from cnn_jax.sweep.bases import mnist_base, sweep_config


def get_config():
    return sweep_config("feature_maps",
                        [{"product": {"model.layers[0].features": [1, 3, 6, 20, 40]}}],
                        [0, 1, 2, 3, 4], mnist_base(), baseline="f20")
