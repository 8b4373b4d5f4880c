"""Number of feature maps of the first convolution on the full MNIST: {1, 3, 6, 20, 40} × 5 seeds
(25 trials).

    python -m experiments.sweep --config=configs/sweeps/feature_maps.py --workdir=sweeps/maps

Base: `mnist_base()` (cnn_jax/sweep/bases.py). Sizes do not change (conv1 24×24×n, pool1
12×12×n); parameters and multiply-adds grow with n (conv1: 26·n parameters, 24·24·25·n MACs;
conv2: 25·n·20 + 20 parameters). The report compares every n with f = 20 (the base) on the 5
common seeds, and plots accuracy against parameters and multiply-adds. Measured (2-core AMD
EPYC, 2026-12-03, 11 min 16 s; docs/study.md, "Feature maps"): f = 40 98.67 ± 0.10% validation,
not distinguishable from f = 20 (98.64 ± 0.11%); 6, 3 and 1 maps lose 0.19, 0.38 and 0.79 points
(Holm p ≤ 0.011).
"""

from cnn_jax.sweep.bases import mnist_base, sweep_config


def get_config():
    return sweep_config("feature_maps",
                        [{"product": {"model.layers[0].features": [1, 3, 6, 20, 40]}}],
                        [0, 1, 2, 3, 4], mnist_base(), baseline="f20")
