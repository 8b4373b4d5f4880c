"""Number of feature maps of the first convolution: {1, 3, 6, 20, 40} × 3 seeds (15 trials).

    python -m experiments.sweep --config=configs/sweeps/feature_maps.py --workdir=sweeps/maps

Sizes do not change (conv1 24×24×n, pool1 12×12×n); parameters and multiply-adds grow with n
(conv1: 26·n parameters, 24·24·25·n MACs; conv2: 25·n·20 + 20). Measured on 2 busy CPU cores,
1 min 22 s; mean ± std over seeds: f20 96.37 ± 0.15, f40 96.10 ± 0.61, f6 95.77 ± 0.55,
f1 95.30 ± 0.44, f3 95.07 ± 1.50 (%): with 3 epochs the second layer's 20 maps make up for a
thin first layer; f40 costs twice f20's multiply-adds for nothing.
"""

from cnn_jax.sweep.bases import sweep_config


def get_config():
    return sweep_config("feature_maps",
                 [{"product": {"model.layers[0].features": [1, 3, 6, 20, 40]}}], [0, 1, 2])
