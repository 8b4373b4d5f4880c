"""Pooling after the first convolution: type {max, avg, none} × window {2, 3} × 2 seeds.

    python -m experiments.sweep --config=configs/sweeps/pooling.py --workdir=sweeps/pooling

Sizes: conv1 24×24; pool1 window 2 → 12 (conv2 8, pool2 4), window 3 → 8 (conv2 4, pool2 2),
none → 24 whatever the window (conv2 20, pool2 10: 2,000 inputs to the softmax layer; 30,550
parameters instead of 13,750 and 4.6× the multiply-adds). 12 grid points, all possible; the
network without pooling is the same for both windows, so it trains once per seed (the sweep log
says `pnone-w3-…: not trained, the same network and training as pnone-w2-…`): 10 trials.
report.md has a type × window heat map (the none/3 cell marked as not trained). Measured on 2
busy CPU cores, 2 min 13 s (12 trials, before duplicates were skipped); mean ± std over 2 seeds:
none 96.45 ± 0.49, max-2 96.30 ± 0.14, avg-2 95.25 ± 0.78, max-3 95.00 ± 0.71,
avg-3 93.15 ± 0.64 (%); no pooling costs ~7× the training time per trial.
"""

from cnn_jax.sweep.bases import sweep_config


def get_config():
    axes = [{"product": {"model.layers[1].pool_type": ["max", "avg", "none"],
                         "model.layers[1].window": [2, 3]}}]
    return sweep_config("pooling", axes, [0, 1])
