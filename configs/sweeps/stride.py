"""Stride of the first convolution: s ∈ {1, 2, 3} × 3 seeds (9 trials, 3 impossible).

    python -m experiments.sweep --config=configs/sweeps/stride.py --workdir=sweeps/stride

Sizes (5×5 kernels): conv1 out = floor((28 − 5)/s) + 1 = 24, 12, 8; pool1 12, 6, 4; conv2 (5×5)
8, 2, and for s = 3 an input of 4 < 5: impossible, recorded as invalid with that reason before
anything trains. Measured on 2 busy CPU cores, 33 s: s1 96.37 ± 0.15%, s2 93.93 ± 1.08% (conv2
sees a 6×6 map, 8× fewer multiply-adds), s3 invalid.
"""

from cnn_jax.sweep.bases import sweep_config


def get_config():
    return sweep_config("stride", [{"product": {"model.layers[0].stride": [1, 2, 3]}}], [0, 1, 2])
