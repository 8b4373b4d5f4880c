"""Filter size of the first convolution on the full MNIST: k ∈ {3, 5, 7, 9} × 5 seeds (20 trials).

    python -m experiments.sweep --config=configs/sweeps/filter_size.py --workdir=sweeps/filter

Base: `mnist_base()` in cnn_jax/sweep/bases.py (CP(20) → CP(20) → softmax, 3 epochs of SGD on
the book's split: 50,000 train / 10,000 validation / 10,000 test). Sizes: conv1 out = 28 − k + 1
= 26, 24, 22, 20; pool1 halves it (13, 12, 11, 10); conv2 (5×5) gives 9, 8, 7, 6 and pool2 4, 4,
3, 3. All four are possible. The report compares every filter size with k = 5 (the book's) on
the 5 common seeds (paired t-test, Holm) and ranks them by validation accuracy.
The four sizes cost within 8% of each other in multiply-adds. Measured: k5 98.64 ± 0.11%
validation accuracy, k3 and k9 98.55%, k7 98.52%: none distinguishable from k5 (Holm p ≥ 0.14;
docs/results.md, "One hyper-parameter at a time", with the wall time; docs/study.md).
"""

from cnn_jax.sweep.bases import mnist_base, sweep_config


def get_config():
    axes = [{"product": {"model.layers[0].kernel": [3, 5, 7, 9]}}]
    return sweep_config("filter_size", axes, [0, 1, 2, 3, 4], mnist_base(), baseline="k5")
