"""LeNet-5 (LeCun et al. 1998) on the embedded 5,000 MNIST digits (`mnist_5k`): conv 6@5×5
(padding 2) → 2×2 average pooling → conv 16@5×5 → 2×2 average pooling → FC120 → FC84 → 10,
tanh; 61,706 parameters.

    python -m experiments.train --config=configs/lenet5.py --workdir=runs/lenet5

SGD with momentum 0.9, η = 0.01, batch 32, 10 epochs. Measured: test accuracy 94.6% at the best
validation epoch (7; final 95.5%) (machine and date: docs/results.md, "Other configs").
"""

from cnn_jax.config import schema_defaults
from cnn_jax.presets import full_layers


def get_config():
    config = schema_defaults()
    config.dataset = "mnist_5k"
    config.validation_size = 500
    config.model.layers = full_layers("lenet5")
    config.optimizer = "momentum"
    config.momentum = 0.9
    config.learning_rate = 0.01
    config.batch_size = 32
    config.num_epochs = 10
    return config
