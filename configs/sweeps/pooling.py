"""Pooling after the first convolution on the full MNIST: type {max, avg, l2, none} × window
{2, 3} × 5 seeds.

    python -m experiments.sweep --config=configs/sweeps/pooling.py --workdir=sweeps/pooling

Base: `mnist_base()` (cnn_jax/sweep/bases.py). Sizes: conv1 24×24; pool1 window 2 → 12 (conv2 8,
pool2 4), window 3 → 8 (conv2 4, pool2 2), none → 24 whatever the window (conv2 20, pool2 10:
2,000 inputs to the softmax layer, 4.6× the multiply-adds). 8 grid points, all possible; the
network without pooling is the same for both windows, so it trains once per seed (the sweep log
says `pnone-w3-…: not trained, the same network and training as pnone-w2-…`): 35 trials. The
report compares every configuration with max 2×2 (the book's) on the 5 common seeds; the plot
against the pool type shows points with 95% intervals, not lines (the types are categories).
Measured (2-core AMD EPYC, 2026-12-02; docs/study.md, "Pooling"): max 2×2 first, 98.64 ± 0.11%
validation; L2 2×2, none, avg 2×2 and max 3×3 not distinguishable from it; L2 3×3 and avg 3×3
worse (Holm p 0.006, 0.047); the window explains 42% of the variance, the type 20%. 48 min 47 s
on a shared machine; the network without pooling does most of the work (4.6× the
multiply-adds): run it in parts with --max_trials if needed.
"""

from cnn_jax.sweep.bases import mnist_base, sweep_config


def get_config():
    axes = [{"product": {"model.layers[1].pool_type": ["max", "avg", "l2", "none"],
                         "model.layers[1].window": [2, 3]}}]
    return sweep_config("pooling", axes, [0, 1, 2, 3, 4], mnist_base(), baseline="pmax-w2")
