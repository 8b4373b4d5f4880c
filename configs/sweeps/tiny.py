"""Tiny sweep for tests and smoke runs: 2 filter sizes × 2 strides × 2 pool types, one seed.

    python -m experiments.sweep --config=configs/sweeps/tiny.py --workdir=sweeps/tiny

conv1 (4 maps, k ∈ {5, 9}, stride ∈ {1, 3}) → pool1 (max or none, 2×2) → conv2 (4 maps 4×4) →
10 logits, 1 epoch on 300 training images of the embedded MNIST set. k9-s3-pmax is impossible:
conv1 floor((28 − 9)/3) + 1 = 7, pool1 floor((7 − 2)/2) + 1 = 3, and conv2's 4×4 kernel does not
fit in 3×3, so it is recorded as invalid. Measured on 2 busy CPU cores: 7 done, 1 invalid in
about 55 s (each new architecture spends ~5 s compiling); test accuracy k9-s1-pnone 65.5%,
k5-s1-pmax 63.0%, k5-s1-pnone 61.5%, k9-s1-pmax 57.0%, k5-s3-pnone 50.0%, k9-s3-pnone 24.0%,
k5-s3-pmax 19.0% (conv2 is 1×1). The same with --executor=ray: the same accuracies.
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
