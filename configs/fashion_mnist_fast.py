"""Time to accuracy: Nielsen's CP(20) → CP(40) → FC100 (ReLU) on the full Fashion-MNIST, offline
(`fashion_mnist_debian`).

    apt-get install dataset-fashion-mnist     # IDX files in /usr/share/datasets/fashion-mnist
    python -m experiments.train --config=configs/fashion_mnist_fast.py --workdir=runs/fashion

58,000 train / 2,000 validation / 10,000 test images; Adam η = 0.003 with cosine decay, batch
64, 3 epochs. Measured: 90.27% test accuracy at the best validation epoch (3) (machine, wall
time and memory: docs/results.md, "Other configs").
"""

from cnn_jax.config import schema_defaults
from cnn_jax.presets import full_layers


def get_config():
    config = schema_defaults()
    config.dataset = "fashion_mnist_debian"
    config.validation_size = 2000
    config.model.layers = full_layers("nielsen_cp2_fc100_relu")
    config.optimizer = "adam"
    config.learning_rate = 0.003
    config.schedule = "cosine"
    config.batch_size = 64
    config.num_epochs = 3
    config.eval_batch_size = 2000
    config.plots = False
    return config
