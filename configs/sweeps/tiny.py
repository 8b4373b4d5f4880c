"""Tiny sweep for tests and smoke runs: 2 filter sizes × 2 strides × 2 pool types, one seed.

    python -m experiments.sweep --config=configs/sweeps/tiny.py --workdir=sweeps/tiny

conv1 (4 maps, k ∈ {5, 9}, stride ∈ {1, 3}) → pool1 (max or none, 2×2) → conv2 (4 maps 4×4) →
10 logits, 1 epoch on 300 training images of the embedded MNIST set. k9-s3-pmax is impossible:
conv1 floor((28 − 9)/3) + 1 = 7, pool1 floor((7 − 2)/2) + 1 = 3, and conv2's 4×4 kernel does not
fit in 3×3, so it is recorded as invalid. Expect 7 done and 1 invalid, the stride-3 networks
far behind (k5-s3-pmax's conv2 is 1×1); --executor=ray gives the same accuracies.
"""

from cnn_jax.presets import complete
from cnn_jax.sweep.bases import small_base, sweep_config


def get_config():
    base = small_base()
    base.train_size = 300
    base.validation_size = 100
    base.test_size = 200
    base.num_epochs = 1
    base.batch_size = 10
    base.learning_rate = 0.1
    base.model.layers = complete([
        {"type": "conv", "features": 4, "kernel": 5, "stride": 1, "activation": "relu"},
        {"type": "pool", "pool_type": "max", "window": 2},
        {"type": "conv", "features": 4, "kernel": 4, "stride": 1, "activation": "relu"},
        {"type": "dense", "features": 10, "activation": "identity"},
    ])
    axes = [{"product": {"model.layers.0.kernel": [5, 9], "model.layers[0].stride": [1, 3],
                         "model.layers[1].pool_type": ["max", "none"]}}]
    return sweep_config("tiny", axes, [0], base)
