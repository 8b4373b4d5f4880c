"""A tiny network for fast tests: one conv layer of 4 maps 5×5 → 2×2 max pool → dropout 0.25 →
10 logits, on the synthetic data set (400 train / 100 validation / 100 test images), plain SGD,
batches of 10, two epochs of 40 steps; no plots or progress bar."""

from cnn_jax.config import schema_defaults
from cnn_jax.presets import complete


def get_config():
    config = schema_defaults()
    config.dataset = "synthetic"
    config.train_size = 400
    config.validation_size = 100
    config.test_size = 100
    config.model.layers = complete([
        {"type": "conv", "features": 4, "kernel": 5, "activation": "relu"},
        {"type": "pool", "pool_type": "max", "window": 2},
        {"type": "dropout", "rate": 0.25},
        {"type": "dense", "features": 10, "activation": "identity"},
    ])
    config.learning_rate = 0.1
    config.batch_size = 10
    config.num_epochs = 2
    config.log_every_steps = 10
    config.nan_check_every = 10
    config.plots = False
    config.progress = False
    return config
