"""Stride of the first convolution on the full MNIST: s ∈ {1, 2, 3} × 5 seeds (15 trials, 5
impossible).

    python -m experiments.sweep --config=configs/sweeps/stride.py --workdir=sweeps/stride

Base: `mnist_base()` (cnn_jax/sweep/bases.py). Sizes (5×5 kernels): conv1 out = floor((28 − 5)/s)
+ 1 = 24, 12, 8; pool1 12, 6, 4; conv2 (5×5) 8, 2, and for s = 3 an input of 4 < 5: impossible,
recorded as invalid with that reason before anything trains. The report compares s = 2 with
s = 1 on the 5 common seeds. s = 2 has 8× fewer multiply-adds. Measured: s1 98.64 ± 0.11%,
s2 98.17 ± 0.23% validation accuracy, −0.48 points (p = 0.012; docs/results.md, "One
hyper-parameter at a time", with the wall time; docs/study.md).
"""

from cnn_jax.sweep.bases import mnist_base, sweep_config


def get_config():
    return sweep_config("stride", [{"product": {"model.layers[0].stride": [1, 2, 3]}}],
                        [0, 1, 2, 3, 4], mnist_base(), baseline="s1")
