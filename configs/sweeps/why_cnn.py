"""Why CNNs, on the full MNIST with 5 seeds: fully connected → local receptive fields (unshared)
→ shared weights → + 2×2 max pooling, one idea at a time (the presets `why_fc`, `why_local`,
`why_shared`, `why_pooled` of cnn_jax/presets.py: 30 neurons, or 20 maps of 5×5, ReLU, then 10
logits).

    python -m experiments.sweep --config=configs/sweeps/why_cnn.py --workdir=sweeps/why_cnn

Training as the other course sweeps (`mnist_base()`: plain SGD η = 0.1, mini-batch 20, 3 epochs,
the book's split, test accuracy at the epoch of best validation accuracy). The report compares
every step with `why_pooled` (label `netwhy_pooled`) on the 5 common seeds (paired t-test,
Holm) and ranks them by validation accuracy. First-layer parameters: 23,550 (fully connected),
299,520 (local), 520 (shared). Measured (validation accuracy, 5 seeds): pooled 98.29 ± 0.13%,
shared 98.18 ± 0.11%, local 97.79 ± 0.17%, fully connected 95.86 ± 0.34% (docs/results.md, "One
hyper-parameter at a time"; docs/study.md).
"""

from cnn_jax.presets import ABLATION_STEPS
from cnn_jax.sweep.bases import mnist_base, sweep_config


def get_config():
    base = mnist_base()
    base.model.layers = []  # the network is the preset of each trial
    axes = [{"product": {"model.preset": list(ABLATION_STEPS)}}]
    return sweep_config("why_cnn", axes, [0, 1, 2, 3, 4], base, baseline="netwhy_pooled")
