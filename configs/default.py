"""Default: Nielsen's CP(20) → CP(40) → FC100 (ReLU) on the embedded 5,000 MNIST digits.

    python -m experiments.train --config=configs/default.py --workdir=runs/default

Expected on 2 CPU cores: about 98% test accuracy after 8 epochs, in about a minute
(3,500 train / 500 validation / 1,000 test images; plain SGD, mini-batch 10, η = 0.03).
"""

from cnn_jax.config import base_config


def get_config():
    config = base_config()
    config.dataset = "mnist_5k"
    config.validation_size = 500
    config.model.preset = "nielsen_cp2_fc100_relu"
    config.optimizer = "sgd"
    config.learning_rate = 0.03
    config.batch_size = 10
    config.num_epochs = 8
    return config
